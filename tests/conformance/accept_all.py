"""A server that accepts everything: the control that proves each conformance check can fail.

It answers every request with 200 and a body shaped like the service the request looks
addressed to (MNS XML, IoT RPC JSON, an OSS object), so the official clients parse the
answer without complaint and only the checks' own judgement can reject it. It verifies
nothing and stores nothing.
"""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

LOOPBACK = "127.0.0.1"
_MNS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Message xmlns="http://mns.aliyuncs.com/doc/v1/">'
    "<MessageId>ACCEPTED-0000000000000001</MessageId>"
    "<MessageBodyMD5>D41D8CD98F00B204E9800998ECF8427E</MessageBodyMD5>"
    "</Message>"
)
_IOT_JSON = '{"RequestId": "ACCEPTED-REQUEST", "Success": true, "Data": {}}'
_OSS_BODY = b"accepted"


class _AcceptAll(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.requests.append(f"{self.command} {self.path}")
        headers = {k.lower() for k in self.headers}
        if self.path.startswith("/topics/") or "x-mns-version" in headers:
            body, content_type = _MNS_XML.encode(), "text/xml;charset=utf-8"
        elif "x-acs-action" in headers or "Action=" in self.path:
            body, content_type = _IOT_JSON.encode(), "application/json;charset=utf-8"
        else:
            body, content_type = _OSS_BODY, "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"ACCEPTED"')
        self.send_header("x-oss-request-id", uuid.uuid4().hex.upper()[:24])
        self.send_header("x-acs-request-id", "ACCEPTED-REQUEST")
        self.send_header("x-mns-request-id", uuid.uuid4().hex.upper()[:24])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _AcceptAll)
        self.lock = threading.Lock()
        self.requests: list[str] = []


class AcceptAllServer:
    """Context manager: an accept-everything HTTP server on 127.0.0.1 (a kernel-chosen port)."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="accept-all", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self) -> AcceptAllServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
