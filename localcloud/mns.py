"""A local MNS (Simple Message Queue) topic service speaking the 2015-06-06 XML protocol.

The real ``mns`` SDK (aliyun-mns-sdk) talks to it unchanged: ``Account("http://127.0.0.1:<port>",
ak, sk[, security_token])``. Every request is checked as MNS checks it:

- ``Authorization: MNS AK:base64(HMAC-SHA1(secret, VERB\\nContent-MD5\\nContent-Type\\nDate\\n
  <sorted x-mns-* headers>/resource))``; unknown key → 403 ``InvalidAccessKeyId``, wrong
  signature → 403 ``SignatureDoesNotMatch``;
- ``Date`` within 15 minutes of the server clock, else 408 ``TimeExpired`` (the status
  MNS's error-code table gives it);
- ``x-mns-version: 2015-06-06``;
- ``Content-MD5`` when present must match the body. The SDK sends base64 of the *hex* digest
  (not of the raw digest as RFC 1864 says); both forms are accepted, anything else is
  400 ``InvalidDegist`` (sic, MNS's spelling);
- an STS key must come with its token in the unsigned ``security-token`` header, else 403
  ``AccessDenied``.

Errors are MNS XML ``<Error><Code/><Message/><RequestId/><HostId/></Error>``, which the SDK
turns into ``MNSServerException`` whose ``type`` is the code.

Topics live in memory; what a topic received can be read from Python (:meth:`LocalMns.messages`,
:meth:`LocalMns.wait_for`) or over HTTP at ``GET /_localcloud/topics/<name>/messages`` (JSON,
no signature). :meth:`LocalMns.publish` lets the local FC deliver destination records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from localcloud.contracts import FaultHook
from localcloud.credentials import CredentialStore

MNS_VERSION = "2015-06-06"
MNS_XMLNS = "http://mns.aliyuncs.com/doc/v1/"
HOST_ID = "http://1234567890.mns.cn-shanghai.aliyuncs.com"
#: The largest message body a topic takes by default (and at most): 64 KB, inclusive.
MAX_MESSAGE_SIZE = 65536
MIN_TOPIC_MESSAGE_SIZE = 1024
MESSAGE_TAG_MAX = 16
MAX_CLOCK_SKEW = timedelta(minutes=15)
#: Topic names (CreateTopic reference): letters, digits and hyphens, a letter or digit
#: first, at most 255 characters.
TOPIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,254}$")
_MNS_AUTH = re.compile(r"^MNS ([^:\s]+):(\S+)$")
_READ_PATH = re.compile(r"^/_localcloud/topics/([^/]+)/messages$")
_TOPIC_PATH = re.compile(r"^/topics/([^/]+)(/messages)?$")


class MnsError(Exception):
    """An MNS error response: HTTP status plus the code the SDK reports as ``type``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class TopicNotExistError(MnsError, LookupError):
    """Raised by the Python API for a topic that was never created."""

    def __init__(self, topic: str) -> None:
        super().__init__(404, "TopicNotExist", f"The topic you provided is not exist: {topic}.")


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as a topic received it."""

    message_id: str
    body: str
    tag: str
    publish_time: int  # milliseconds since the epoch, as MNS reports PublishTime
    body_md5: str  # uppercase hex MD5 of the UTF-8 body, as MNS returns MessageBodyMD5


@dataclass
class _Topic:
    name: str
    create_time: int
    maximum_message_size: int = MAX_MESSAGE_SIZE
    logging_enabled: bool = False
    last_modify_time: int = 0

    def __post_init__(self) -> None:
        self.messages: list[ReceivedMessage] = []


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LocalMns:
    """MNS topics as a WSGI app, with Python accessors for tests, the demo and the local FC."""

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        faults: FaultHook | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.credentials = credentials
        self.faults = faults
        self.now = now
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._topics: dict[str, _Topic] = {}
        self._calls: Counter[str] = Counter()
        self._sequence = 0

    # Python accessors ----------------------------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Authenticated calls per operation (PublishMessage, CreateTopic, ...)."""
        with self._lock:
            return Counter(self._calls)

    def create_topic(self, name: str, *, maximum_message_size: int = MAX_MESSAGE_SIZE) -> None:
        """Create a topic (no-op if it exists), as the demo and tests set up the account."""
        _check_topic_name(name)
        _check_max_size(maximum_message_size)
        with self._lock:
            if name not in self._topics:
                stamp = self._epoch_seconds()
                self._topics[name] = _Topic(name, stamp, maximum_message_size, False, stamp)

    def delete_topic(self, name: str) -> None:
        with self._lock:
            if self._topics.pop(name, None) is None:
                raise TopicNotExistError(name)

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._topics)

    def publish(self, topic: str, body: str, tag: str | None = None) -> ReceivedMessage:
        """Deliver a message without HTTP (the local FC's destination path); same limits.

        Raises :class:`TopicNotExistError` or :class:`MnsError` (``InvalidArgument``) as the
        HTTP path would answer.
        """
        with self._lock:
            return self._append(topic, body, tag or "")

    def messages(self, topic: str) -> list[ReceivedMessage]:
        """What the topic received, oldest first."""
        with self._lock:
            return list(self._topic(topic).messages)

    def wait_for(self, topic: str, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until the topic holds at least ``count`` messages; raise TimeoutError if not."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._topic(topic).messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    have = len(self._topic(topic).messages)
                    raise TimeoutError(
                        f"topic {topic!r} has {have} message(s), expected {count} "
                        f"within {timeout} s"
                    )
                self._arrived.wait(left)
            return list(self._topic(topic).messages)

    def reset(self) -> None:
        """Empty every topic and the call counts; topics themselves stay."""
        with self._lock:
            for topic in self._topics.values():
                topic.messages.clear()
            self._calls.clear()

    # WSGI ----------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The one dispatch path: route, authenticate, count, fault seam, run."""
        request_id = uuid.uuid4().hex.upper()[:24]
        try:
            read = _READ_PATH.match(request.path)
            if read and request.method == "GET":
                return self._read_endpoint(read.group(1))
            operation, topic = _route(request)
            self._authenticate(request)
            with self._lock:
                self._calls[operation] += 1
            if self.faults is not None:
                injected = self.faults.before("mns", operation)
                if injected is not None:
                    return injected
            return self._run(operation, topic, request, request_id)
        except MnsError as error:
            return _error(error, request_id)

    def _run(self, operation: str, topic: str, request: Request, request_id: str) -> Response:
        if operation == "CreateTopic":
            return self._create_topic_http(topic, request, request_id)
        if operation == "SetTopicAttributes":
            size = _parse_topic_meta(request.get_data())
            with self._lock:
                meta = self._topic(topic)
                if size is not None:
                    meta.maximum_message_size = size
                meta.last_modify_time = self._epoch_seconds()
            return _empty(204, request_id)
        if operation == "DeleteTopic":
            self.delete_topic(topic)
            return _empty(204, request_id)
        if operation == "GetTopicAttributes":
            return self._topic_attributes(topic, request, request_id)
        return self._publish_http(topic, request, request_id)

    def _create_topic_http(self, topic: str, request: Request, request_id: str) -> Response:
        _check_topic_name(topic)
        size = _parse_topic_meta(request.get_data())
        with self._lock:
            existing = self._topics.get(topic)
            if existing is not None:
                if size is not None and size != existing.maximum_message_size:
                    raise MnsError(
                        409,
                        "TopicAlreadyExist",
                        "The topic you want to create already exists with other attributes.",
                    )
                status = 204
            else:
                status = 201
        if status == 201:
            self.create_topic(topic, maximum_message_size=size or MAX_MESSAGE_SIZE)
        # The SDK reads Location on every success, so an existing topic answers with it too.
        response = _empty(status, request_id)
        response.headers["Location"] = f"{request.host_url.rstrip('/')}/topics/{topic}"
        return response

    def _topic_attributes(self, topic: str, request: Request, request_id: str) -> Response:
        with self._lock:
            meta = self._topic(topic)
            fields = {
                "TopicName": meta.name,
                "CreateTime": str(meta.create_time),
                "LastModifyTime": str(meta.last_modify_time),
                "MaximumMessageSize": str(meta.maximum_message_size),
                "MessageRetentionPeriod": "86400",
                "MessageCount": str(len(meta.messages)),
                "LoggingEnabled": "True" if meta.logging_enabled else "False",
                "TopicURL": f"{request.host_url.rstrip('/')}/topics/{meta.name}",
            }
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
        return _xml(200, request_id, f'<Topic xmlns="{MNS_XMLNS}">{inner}</Topic>')

    def _publish_http(self, topic: str, request: Request, request_id: str) -> Response:
        body, tag = _parse_message(request.get_data())
        with self._lock:
            message = self._append(topic, body, tag)
        xml = (
            f'<Message xmlns="{MNS_XMLNS}"><MessageId>{message.message_id}</MessageId>'
            f"<MessageBodyMD5>{message.body_md5}</MessageBodyMD5></Message>"
        )
        return _xml(201, request_id, xml)

    def _read_endpoint(self, topic: str) -> Response:
        try:
            received = self.messages(topic)
        except TopicNotExistError as error:
            return Response(
                json.dumps({"error": error.code, "topic": topic}),
                status=404,
                content_type="application/json",
            )
        payload = {"topic": topic, "messages": [asdict(m) for m in received]}
        return Response(json.dumps(payload, ensure_ascii=False), content_type="application/json")

    # Internals (callers hold the lock where noted) ------------------------------------------

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotExistError(name)
        return topic

    def _append(self, topic_name: str, body: str, tag: str) -> ReceivedMessage:
        """Store one message; the caller holds the lock."""
        topic = self._topic(topic_name)
        raw = body.encode("utf-8")
        if not 1 <= len(raw) <= topic.maximum_message_size:
            raise MnsError(
                400,
                "InvalidArgument",
                f"The value of MessageBody should between 1 and {topic.maximum_message_size} "
                f"bytes (got {len(raw)}).",
            )
        if len(tag) > MESSAGE_TAG_MAX:
            raise MnsError(
                400,
                "InvalidArgument",
                f"The length of MessageTag should be between 1 and {MESSAGE_TAG_MAX} "
                f"(got {len(tag)}).",
            )
        self._sequence += 1
        message = ReceivedMessage(
            message_id=f"{uuid.uuid4().hex[:16].upper()}-1-{self._sequence:010X}",
            body=body,
            tag=tag,
            publish_time=int(self.now().timestamp() * 1000),
            body_md5=hashlib.md5(raw).hexdigest().upper(),
        )
        topic.messages.append(message)
        self._arrived.notify_all()
        return message

    def _epoch_seconds(self) -> int:
        return int(self.now().timestamp())

    def _authenticate(self, request: Request) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        authorization = headers.get("authorization")
        if not authorization:
            raise MnsError(400, "MissingAuthorizationHeader", "Authorization header is required.")
        match = _MNS_AUTH.match(authorization)
        if match is None:
            raise MnsError(
                400, "InvalidAuthorizationHeader", "The Authorization header format is invalid."
            )
        date_header = headers.get("date")
        if not date_header:
            raise MnsError(400, "MissingDateHeader", "Date header is required.")
        try:
            sent = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            raise MnsError(400, "InvalidDateHeader", "The Date header format is invalid.") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=timezone.utc)
        if headers.get("x-mns-version") != MNS_VERSION:
            raise MnsError(
                400,
                "InvalidArgument",
                f"x-mns-version must be {MNS_VERSION} (got {headers.get('x-mns-version')!r}).",
            )
        access_key_id, signature = match.groups()
        credential = self.credentials.get(access_key_id)
        if credential is None:
            raise MnsError(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
        if abs(self.now() - sent) > MAX_CLOCK_SKEW:
            raise MnsError(408, "TimeExpired", "The http request you sent is expired.")
        content_md5 = headers.get("content-md5", "")
        if content_md5:
            _check_content_md5(content_md5, request.get_data())
        mns_headers = "".join(
            f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-mns-")
        )
        resource = request.path + (
            "?" + request.query_string.decode() if request.query_string else ""
        )
        string_to_sign = (
            f"{request.method}\n{content_md5}\n{headers.get('content-type', '')}\n"
            f"{date_header}\n{mns_headers}{resource}"
        )
        expected = base64.b64encode(
            hmac.new(
                credential.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha1
            ).digest()
        ).decode()
        if not hmac.compare_digest(expected, signature):
            raise MnsError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        token = headers.get("security-token", "")
        if credential.security_token is not None and not hmac.compare_digest(
            token, credential.security_token
        ):
            raise MnsError(403, "AccessDenied", "The security token you provided is invalid.")
        if credential.security_token is None and token:
            raise MnsError(403, "AccessDenied", "A security token was sent with a long-term key.")


def _route(request: Request) -> tuple[str, str]:
    match = _TOPIC_PATH.match(request.path)
    if match is None:
        raise MnsError(400, "InvalidRequestURL", "Http request URL format invalid.")
    topic, messages = match.group(1), match.group(2)
    method = request.method
    if messages:
        if method == "POST":
            return "PublishMessage", topic
    elif method == "PUT":
        if request.args.get("metaoverride") == "true":
            return "SetTopicAttributes", topic
        return "CreateTopic", topic
    elif method == "DELETE":
        return "DeleteTopic", topic
    elif method == "GET":
        return "GetTopicAttributes", topic
    raise MnsError(400, "InvalidRequestURL", f"{method} {request.path} is not supported.")


def _check_content_md5(header: str, body: bytes) -> None:
    digest = hashlib.md5(body)
    accepted = {
        base64.b64encode(digest.hexdigest().encode()).decode(),  # what the Python SDK sends
        base64.b64encode(digest.digest()).decode(),  # RFC 1864
    }
    if header not in accepted:
        raise MnsError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")


def _check_topic_name(name: str) -> None:
    if not TOPIC_NAME_PATTERN.match(name):
        raise MnsError(
            400,
            "InvalidTopicName",
            f"The topic name you provided is invalid: {name!r}. Use letters, digits and "
            "hyphens, a letter or digit first, at most 255 characters.",
        )


def _check_max_size(size: int) -> None:
    if not MIN_TOPIC_MESSAGE_SIZE <= size <= MAX_MESSAGE_SIZE:
        raise MnsError(
            400,
            "InvalidArgument",
            f"The value of MaximumMessageSize should between {MIN_TOPIC_MESSAGE_SIZE} and "
            f"{MAX_MESSAGE_SIZE} bytes (got {size}).",
        )


def _children(xml: bytes, root_name: str) -> Mapping[str, str]:
    if not xml.strip():
        return {}
    try:
        # Local input only; ElementTree does not resolve external entities.
        root = ET.fromstring(xml)  # noqa: S314
    except ET.ParseError:
        raise MnsError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if root.tag.rpartition("}")[2] != root_name:
        raise MnsError(
            400,
            "InvalidArgument",
            f"The XML you provided did not validate against our published schema: root "
            f"{root.tag!r} is not {root_name}.",
        )
    return {child.tag.rpartition("}")[2]: child.text or "" for child in root}


def _parse_message(xml: bytes) -> tuple[str, str]:
    fields = _children(xml, "Message")
    if "MessageBody" not in fields:
        raise MnsError(
            400,
            "InvalidArgument",
            "The XML you provided did not validate against our published schema: "
            "MessageBody is missing.",
        )
    return fields["MessageBody"], fields.get("MessageTag", "")


def _parse_topic_meta(xml: bytes) -> int | None:
    fields = _children(xml, "Topic")
    raw = fields.get("MaximumMessageSize")
    if raw is None:
        return None
    if not raw.isdigit():
        raise MnsError(
            400, "InvalidArgument", f"MaximumMessageSize must be a number (got {raw!r})."
        )
    size = int(raw)
    _check_max_size(size)
    return size


def _headers(request_id: str) -> dict[str, str]:
    return {"x-mns-request-id": request_id, "x-mns-version": MNS_VERSION}


def _xml(status: int, request_id: str, document: str) -> Response:
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?>' + document,
        status=status,
        content_type="text/xml;charset=utf-8",
        headers=_headers(request_id),
    )


def _empty(status: int, request_id: str) -> Response:
    return Response(b"", status=status, headers=_headers(request_id))


def _error(error: MnsError, request_id: str) -> Response:
    document = (
        f'<Error xmlns="{MNS_XMLNS}"><Code>{escape(error.code)}</Code>'
        f"<Message>{escape(error.message)}</Message><RequestId>{request_id}</RequestId>"
        f"<HostId>{HOST_ID}</HostId></Error>"
    )
    return _xml(error.status, request_id, document)
