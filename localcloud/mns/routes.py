"""The MNS topic operations the stand-in answers, by method and path, each with its handler.

``/topics/<name>`` takes PUT (CreateTopic, or SetTopicAttributes with ``?metaoverride=true``),
GET (GetTopicAttributes) and DELETE (DeleteTopic); ``/topics/<name>/messages`` takes POST
(PublishMessage). Adding an operation is one handler in :mod:`localcloud.mns.responses`
and one line in :data:`ROUTES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from werkzeug.wrappers import Request, Response

import localcloud.mns.responses as responses
from localcloud.mns.backend import MnsBackend
from localcloud.mns.errors import MnsError

Handler = Callable[[MnsBackend, str, Request, str], Response]

#: ``(method, path kind, metaoverride)`` -> operation; the path kind is "topic" or "messages".
ROUTES: Mapping[tuple[str, str, bool], str] = {
    ("PUT", "topic", False): "CreateTopic",
    ("PUT", "topic", True): "SetTopicAttributes",
    ("GET", "topic", False): "GetTopicAttributes",
    ("DELETE", "topic", False): "DeleteTopic",
    ("POST", "messages", False): "PublishMessage",
}

OPERATIONS: Mapping[str, Handler] = {
    "CreateTopic": responses.create_topic,
    "SetTopicAttributes": responses.set_topic_attributes,
    "GetTopicAttributes": responses.get_topic_attributes,
    "DeleteTopic": responses.delete_topic,
    "PublishMessage": responses.publish_message,
}

#: The local, unsigned read hook (not an MNS API).
READ_PATH = re.compile(r"^/_localcloud/topics/([^/]+)/messages$")
_TOPIC_PATH = re.compile(r"^/topics/([^/]+)(/messages)?$")


def route(request: Request) -> tuple[str, str]:
    """The operation and topic a request names; 400 ``InvalidRequestURL`` when none."""
    match = _TOPIC_PATH.match(request.path)
    if match is None:
        raise MnsError(400, "InvalidRequestURL", "Http request URL format invalid.")
    topic, messages = match.group(1), match.group(2)
    method = request.method
    override = method == "PUT" and request.args.get("metaoverride") == "true"
    operation = ROUTES.get((method, "messages" if messages else "topic", override))
    if operation is None:
        raise MnsError(400, "InvalidRequestURL", f"{method} {request.path} is not supported.")
    return operation, topic
