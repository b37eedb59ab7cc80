"""MNS errors: ``<Error><Code/><Message/><RequestId/><HostId/></Error>`` with the HTTP status.

The ``mns`` SDK turns such an answer into ``MNSServerException`` whose ``type`` is the code.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from localcloud.mns.protocol import MNS_XMLNS, xml_response

HOST_ID = "http://1234567890.mns.cn-shanghai.aliyuncs.com"


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


def invalid_argument(message: str) -> MnsError:
    return MnsError(400, "InvalidArgument", message)


def error_response(error: MnsError, request_id: str) -> Response:
    document = (
        f'<Error xmlns="{MNS_XMLNS}"><Code>{escape(error.code)}</Code>'
        f"<Message>{escape(error.message)}</Message><RequestId>{request_id}</RequestId>"
        f"<HostId>{HOST_ID}</HostId></Error>"
    )
    return xml_response(error.status, request_id, document)
