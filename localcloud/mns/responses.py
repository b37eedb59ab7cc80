"""One handler per MNS topic operation: read the request's XML, call the backend, answer.

Also the local read hook ``GET /_localcloud/topics/<name>/messages`` (JSON, no signature),
which is not an MNS API: it lets tests and the demo see deliveries without a subscriber.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from localcloud.mns.backend import MnsBackend, check_max_size, check_topic_name
from localcloud.mns.errors import MnsError, TopicNotExistError, invalid_argument
from localcloud.mns.protocol import MNS_XMLNS, empty_response, xml_response


def create_topic(backend: MnsBackend, topic: str, request: Request, request_id: str) -> Response:
    check_topic_name(topic)
    created = backend.declare_topic(topic, parse_topic_meta(request.get_data()))
    # The SDK reads Location on every success, so an existing topic answers with it too.
    response = empty_response(201 if created else 204, request_id)
    response.headers["Location"] = _topic_url(request, topic)
    return response


def set_topic_attributes(
    backend: MnsBackend, topic: str, request: Request, request_id: str
) -> Response:
    backend.set_attributes(topic, parse_topic_meta(request.get_data()))
    return empty_response(204, request_id)


def delete_topic(backend: MnsBackend, topic: str, request: Request, request_id: str) -> Response:
    backend.delete_topic(topic)
    return empty_response(204, request_id)


def get_topic_attributes(
    backend: MnsBackend, topic: str, request: Request, request_id: str
) -> Response:
    info = backend.describe(topic)
    fields = {
        "TopicName": info.name,
        "CreateTime": str(info.create_time),
        "LastModifyTime": str(info.last_modify_time),
        "MaximumMessageSize": str(info.maximum_message_size),
        "MessageRetentionPeriod": "86400",
        "MessageCount": str(info.message_count),
        "LoggingEnabled": "True" if info.logging_enabled else "False",
        "TopicURL": _topic_url(request, info.name),
    }
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return xml_response(200, request_id, f'<Topic xmlns="{MNS_XMLNS}">{inner}</Topic>')


def publish_message(backend: MnsBackend, topic: str, request: Request, request_id: str) -> Response:
    body, tag = parse_message(request.get_data())
    message = backend.publish(topic, body, tag)
    xml = (
        f'<Message xmlns="{MNS_XMLNS}"><MessageId>{message.message_id}</MessageId>'
        f"<MessageBodyMD5>{message.body_md5}</MessageBodyMD5></Message>"
    )
    return xml_response(201, request_id, xml)


def read_messages(backend: MnsBackend, topic: str) -> Response:
    """The local read hook: what the topic received, as JSON."""
    try:
        received = backend.messages(topic)
    except TopicNotExistError as error:
        return Response(
            json.dumps({"error": error.code, "topic": topic}),
            status=404,
            content_type="application/json",
        )
    payload = {"topic": topic, "messages": [asdict(m) for m in received]}
    return Response(json.dumps(payload, ensure_ascii=False), content_type="application/json")


def _topic_url(request: Request, topic: str) -> str:
    return f"{request.host_url.rstrip('/')}/topics/{topic}"


# Request bodies ----------------------------------------------------------------------------


def parse_message(xml: bytes) -> tuple[str, str]:
    """PublishMessage's ``<Message>``: the body (required) and the tag ("" when absent)."""
    fields = _children(xml, "Message")
    if "MessageBody" not in fields:
        raise invalid_argument(
            "The XML you provided did not validate against our published schema: "
            "MessageBody is missing."
        )
    return fields["MessageBody"], fields.get("MessageTag", "")


def parse_topic_meta(xml: bytes) -> int | None:
    """CreateTopic's / SetTopicAttributes' ``<Topic>``: its MaximumMessageSize, if given."""
    fields = _children(xml, "Topic")
    raw = fields.get("MaximumMessageSize")
    if raw is None:
        return None
    if not raw.isdigit():
        raise invalid_argument(f"MaximumMessageSize must be a number (got {raw!r}).")
    size = int(raw)
    check_max_size(size)
    return size


def _children(xml: bytes, root_name: str) -> Mapping[str, str]:
    if not xml.strip():
        return {}
    try:
        # Local input only; ElementTree does not resolve external entities.
        root = ET.fromstring(xml)  # noqa: S314
    except ET.ParseError:
        raise MnsError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if root.tag.rpartition("}")[2] != root_name:
        raise invalid_argument(
            f"The XML you provided did not validate against our published schema: root "
            f"{root.tag!r} is not {root_name}."
        )
    return {child.tag.rpartition("}")[2]: child.text or "" for child in root}
