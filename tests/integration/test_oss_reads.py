"""The adapter's own HEAD / small GET (adapters/oss_reads.py), checked three ways.

- Against oss2: the same request gets the same URL, the same signed headers and the same
  V4 Authorization as oss2's own ``Bucket`` with ``AuthV4`` / ``StsAuth(v4)`` sends.
- Against the local OSS, which verifies every signature (and refuses V1): metadata,
  bodies, limits, missing objects and buckets, bad keys, injected faults, a dead endpoint.
- Against a raw socket server on 127.0.0.1 for the response shapes the local OSS never
  sends: bodies that end by closing the connection, malformed or broken lengths.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import oss2
import pytest
import requests
from werkzeug.wrappers import Response

from localcloud.credentials import DEFAULT_ACCESS_KEY_ID as AK
from localcloud.credentials import DEFAULT_ACCESS_KEY_SECRET as SK
from localcloud.oss import LocalOss
from ota_release.adapters import CloudCredentials
from ota_release.adapters.oss import OssObjectStore, oss_auth
from ota_release.adapters.oss_reads import OssReads, check_region
from ota_release.errors import NotFoundError, PermanentError, TransientError

if TYPE_CHECKING:
    from tests.integration.conftest import StartOss

pytestmark = pytest.mark.integration

BUCKET = "reads-bucket"
REGION = "cn-hangzhou"
KEYS = [
    "firmware/acme/cam-2.0.0.bin",
    "with space/and+plus%percent.bin",
    "固件/摄像头 v2.bin",
    "ümlaut & ampersand?query#hash.bin",
    "tilde~star*paren(1)/=equals;semi,comma.bin",
]
TOKEN = "CAIS-sts-token-for-reads"
MOMENT = datetime(2026, 11, 27, 10, 0, 0, tzinfo=timezone.utc)
ENDPOINTS = [
    "https://oss-cn-shanghai-internal.aliyuncs.com",  # virtual-hosted: Host <bucket>.oss-...
    "http://127.0.0.1:9000",  # an IP: path style
]


def reads_for(endpoint: str, credentials: CloudCredentials, **kwargs: Any) -> OssReads:
    return OssReads(credentials, endpoint, region=kwargs.pop("region", REGION), **kwargs)


# -- the same request as oss2 -------------------------------------------------------------


class _Sent(Exception):
    """Stops a request once it has been captured, before anything reaches the network."""


def _freeze_oss2(monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen(datetime):
        @classmethod
        def utcnow(cls) -> datetime:  # type: ignore[override]
            return MOMENT.replace(tzinfo=None)

    monkeypatch.setattr(oss2.auth, "datetime", Frozen)


def _oss2_request(
    monkeypatch: pytest.MonkeyPatch, verb: str, endpoint: str, key: str, token: str | None
) -> Any:
    """The request oss2's own Bucket would send for HEAD/GET ``key`` (captured, not sent)."""
    captured: list[Any] = []

    def capture(self: Any, req: Any, timeout: Any) -> Any:
        captured.append(req)
        raise _Sent

    monkeypatch.setattr(oss2.http.Session, "do_request", capture)
    auth = (
        oss2.StsAuth(AK, SK, token, auth_version=oss2.AUTH_VERSION_4)
        if token
        else oss2.AuthV4(AK, SK)
    )
    bucket = oss2.Bucket(auth, endpoint, "my-bucket", region="cn-shanghai")
    with pytest.raises(_Sent):
        if verb == "PUT":
            bucket.put_object(key, BODY, headers={"Content-Type": "application/json"})
        else:
            (bucket.head_object if verb == "HEAD" else bucket.get_object)(key)
    return captured[0]


def _our_request(
    monkeypatch: pytest.MonkeyPatch, verb: str, endpoint: str, key: str, token: str | None
) -> tuple[str, str, dict[str, str]]:
    """What OssReads sends for the same call: (host, path, headers), captured before I/O."""
    captured: list[tuple[str, str, dict[str, str]]] = []

    def capture(
        self: Any,
        verb: str,
        op: str,
        host: str,
        path: str,
        headers: Any,
        limit: int,
        body: bytes | None = None,
    ) -> Any:
        captured.append((host, path, headers))
        raise _Sent

    monkeypatch.setattr(OssReads, "_send", capture)
    reads = reads_for(
        endpoint,
        CloudCredentials(AK, SK, token),
        region="cn-shanghai",
        clock=MOMENT.timestamp,
    )
    with pytest.raises(_Sent):
        if verb == "PUT":
            reads.put("my-bucket", key, BODY, "application/json")
        else:
            reads.head("my-bucket", key) if verb == "HEAD" else reads.read("my-bucket", key, 10)
    return captured[0]


#: An outcome document, as the function PUTs it (OssReads.put).
BODY = b'{"outcome": "created"}'


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("verb", ["GET", "HEAD", "PUT"])
def test_request_equals_oss2s_own_v4_request(
    verb: str, token: str | None, key: str, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN oss2 and the adapter signing the same call at the same moment
    _freeze_oss2(monkeypatch)
    theirs = _oss2_request(monkeypatch, verb, endpoint, key, token)
    host, path, ours = _our_request(monkeypatch, verb, endpoint, key, token)
    scheme = endpoint.split("://")[0]

    # THEN both address the same URL and send the same signed headers and Authorization
    assert f"{scheme}://{host}{path}" == theirs.url
    signed = {k.lower(): v for k, v in theirs.headers.items() if k.lower().startswith("x-oss-")}
    assert {k: v for k, v in ours.items() if k.startswith("x-oss-")} == signed
    assert ours["Authorization"] == theirs.headers["authorization"]
    assert ours["Authorization"].startswith(
        f"OSS4-HMAC-SHA256 Credential={AK}/20261127/cn-shanghai/oss/aliyun_v4_request, "
    )
    assert signed["x-oss-date"] == "20261127T100000Z"
    assert signed["x-oss-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert signed.get("x-oss-security-token") == token
    if verb == "PUT":  # Content-Type is signed too: the same value on both sides
        assert ours["Content-Type"] == theirs.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "region", ["oss-cn-shanghai", "CN-SHANGHAI", "", "shanghai", "cn_shanghai", "https://x"]
)
def test_a_region_that_v4_cannot_sign_for_is_refused_by_name(region: str) -> None:
    with pytest.raises(ValueError) as direct:
        check_region(region)
    with pytest.raises(ValueError) as via_store:
        OssObjectStore(CloudCredentials(AK, SK), "http://127.0.0.1:1", "http://1", region=region)
    for caught in (direct, via_store):
        assert str(caught.value).startswith("region: must be")
        assert repr(region) in str(caught.value)


def test_the_oss2_signer_is_v4_with_and_without_sts() -> None:
    assert oss_auth(CloudCredentials(AK, SK)).auth_version() == oss2.AUTH_VERSION_4
    assert oss_auth(CloudCredentials(AK, SK, TOKEN)).auth_version() == oss2.AUTH_VERSION_4


# -- against the local OSS ----------------------------------------------------------------


class Faults:
    """Answers the next ``count`` OSS calls with a 503 (a FaultHook)."""

    def __init__(self) -> None:
        self.count = 0

    def before(self, service: str, operation: str) -> Response | None:
        if self.count <= 0:
            return None
        self.count -= 1
        body = "<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>"
        return Response(body, status=503, content_type="application/xml")


@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(scope="module")
def local(start_oss: StartOss, faults: Faults) -> tuple[LocalOss, str]:
    keys = [(AK, SK), ("STS.reads", "sts-secret", TOKEN)]
    oss, url = start_oss("reads", keys=keys, region=REGION, faults=faults)
    oss.create_bucket(BUCKET)
    return oss, url


def put(local: tuple[LocalOss, str], key: str, data: bytes) -> None:
    local[0].put_object(BUCKET, key, data, notify=False)


@pytest.mark.parametrize("key", KEYS)
def test_head_reports_what_oss2_reports(local: tuple[LocalOss, str], key: str) -> None:
    # GIVEN an object uploaded under an awkward key
    data = key.encode() * 10
    put(local, key, data)
    sdk = oss2.Bucket(oss2.AuthV4(AK, SK), local[1], BUCKET, region=REGION).head_object(key)
    # WHEN the adapter reads its metadata
    info = reads_for(local[1], CloudCredentials(AK, SK)).head(BUCKET, key)
    # THEN it matches oss2's view of the same object
    assert info is not None
    assert (info.size, info.etag, info.object_type) == (len(data), sdk.etag, "Normal")
    assert info.etag == hashlib.md5(data).hexdigest().upper()  # noqa: S324 - OSS's ETag
    assert info.crc64 == int(sdk.headers["x-oss-hash-crc64ecma"])
    assert info.last_modified is not None
    assert int(info.last_modified.timestamp()) == sdk.last_modified
    assert info.request_id


def test_reads_with_sts_credentials_send_the_token(local: tuple[LocalOss, str]) -> None:
    put(local, "sts/fw.bin", b"firmware")
    reads = reads_for(local[1], CloudCredentials("STS.reads", "sts-secret", TOKEN))
    read = reads.read(BUCKET, "sts/fw.bin", 100)
    assert read.data == b"firmware"
    assert read.request_id, "the GetObject's request id comes back with the bytes"
    # Without its token the same key is refused.
    bare = reads_for(local[1], CloudCredentials("STS.reads", "sts-secret", None))
    with pytest.raises(PermanentError) as caught:
        bare.head(BUCKET, "sts/fw.bin")
    assert caught.value.status == 403


def test_head_of_a_missing_object_is_none(local: tuple[LocalOss, str]) -> None:
    assert reads_for(local[1], CloudCredentials(AK, SK)).head(BUCKET, "missing.bin") is None


def test_get_of_a_missing_object_is_not_found(local: tuple[LocalOss, str]) -> None:
    with pytest.raises(NotFoundError) as caught:
        reads_for(local[1], CloudCredentials(AK, SK)).read(BUCKET, "missing.json", 100)
    assert (caught.value.code, caught.value.status) == ("NoSuchKey", 404)
    assert caught.value.request_id


def test_a_wrong_secret_is_a_permanent_signature_error(local: tuple[LocalOss, str]) -> None:
    put(local, "auth/fw.bin", b"x")
    with pytest.raises(PermanentError) as caught:
        reads_for(local[1], CloudCredentials(AK, "wrong")).read(BUCKET, "auth/fw.bin", 10)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert not isinstance(caught.value, TransientError)


def test_an_object_over_the_limit_is_refused_and_the_reader_goes_on(
    local: tuple[LocalOss, str],
) -> None:
    # GIVEN one object just over the limit and one at the limit
    put(local, "limit/big.json", b"x" * 1025)
    put(local, "limit/ok.json", b"y" * 1024)
    reads = reads_for(local[1], CloudCredentials(AK, SK))
    # WHEN both are read through the same reader
    with pytest.raises(ValueError, match="larger than 1024 bytes"):
        reads.read(BUCKET, "limit/big.json", 1024)
    # THEN the unread bytes did not poison the next request
    assert reads.read(BUCKET, "limit/ok.json", 1024).data == b"y" * 1024
    assert reads.head(BUCKET, "limit/ok.json") is not None


def test_many_reads_share_one_connection(local: tuple[LocalOss, str]) -> None:
    put(local, "keepalive/a.json", b"a")
    reads = reads_for(local[1], CloudCredentials(AK, SK))
    reads.head(BUCKET, "keepalive/a.json")
    first = reads._conn
    for _ in range(3):
        assert reads.read(BUCKET, "keepalive/a.json", 10).data == b"a"
        reads.head(BUCKET, "keepalive/a.json")
    assert reads._conn is first


def test_a_503_is_transient_with_the_service_code(
    local: tuple[LocalOss, str], faults: Faults
) -> None:
    put(local, "faults/fw.bin", b"x")
    reads = reads_for(local[1], CloudCredentials(AK, SK))
    faults.count = 2
    with pytest.raises(TransientError) as head_error:
        reads.head(BUCKET, "faults/fw.bin")
    with pytest.raises(TransientError) as get_error:
        reads.read(BUCKET, "faults/fw.bin", 10)
    assert head_error.value.status == get_error.value.status == 503
    assert get_error.value.code == "ServiceUnavailable"
    # AND once the service recovers the same reader works
    assert reads.read(BUCKET, "faults/fw.bin", 10).data == b"x"


def test_an_unreachable_endpoint_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reads = reads_for(f"http://127.0.0.1:{port}", CloudCredentials(AK, SK), timeout=2)
    with pytest.raises(TransientError) as caught:
        reads.head(BUCKET, "fw.bin")
    assert caught.value.code == "ConnectionRefusedError"


def test_the_store_reads_small_objects_without_loading_oss2_state(
    local: tuple[LocalOss, str],
) -> None:
    # GIVEN the ObjectStore adapter the function builds
    put(local, "store/fw.bin.ota.json", b'{"version": "1.0.0"}')
    store = OssObjectStore(CloudCredentials(AK, SK), local[1], local[1], region=REGION)
    # WHEN it takes the two reads every invocation starts with
    info = store.head(BUCKET, "store/fw.bin.ota.json")
    body = store.read_small(BUCKET, "store/fw.bin.ota.json", 64 * 1024).data
    # THEN they went through the small-read path: no oss2 Bucket was built
    assert info is not None and info.size == len(body)
    assert store._buckets == {}


def test_a_missing_bucket_is_not_a_missing_object(local: tuple[LocalOss, str]) -> None:
    reads = reads_for(local[1], CloudCredentials(AK, SK))
    # HEAD of a missing object in an existing bucket: no such object
    assert reads.head(BUCKET, "never-uploaded.bin") is None
    # HEAD and GET in a bucket that does not exist: NotFoundError with the bucket's code
    with pytest.raises(NotFoundError) as head:
        reads.head("no-such-bucket-here", "fw.bin")
    with pytest.raises(NotFoundError) as get:
        reads.read("no-such-bucket-here", "fw.bin.ota.json", 100)
    assert (head.value.code, head.value.status) == ("NoSuchBucket", 404)
    assert (get.value.code, get.value.status) == ("NoSuchBucket", 404)
    # while a missing object reads as NoSuchKey
    with pytest.raises(NotFoundError) as key:
        reads.read(BUCKET, "never-uploaded.json", 100)
    assert key.value.code == "NoSuchKey"


def test_direct_mode_urls_are_v4_presigned_and_work(local: tuple[LocalOss, str]) -> None:
    # GIVEN an object and the adapter the function builds
    put(local, "direct/固件 v2+.bin", b"direct download")
    store = OssObjectStore(CloudCredentials(AK, SK), local[1], local[1], region=REGION)

    # WHEN it makes a signed URL (direct mode)
    url = store.object_url(BUCKET, "direct/固件 v2+.bin", 300)

    # THEN the URL carries the V4 query signature and the local OSS (V1 refused) serves it
    for param in (
        "x-oss-signature-version=OSS4-HMAC-SHA256",
        f"x-oss-credential={AK}%2F",
        "x-oss-date=",
        "x-oss-expires=300",
        "x-oss-signature=",
    ):
        assert param in url
    assert "OSSAccessKeyId" not in url and "Signature=" not in url
    response = requests.get(url, timeout=10)
    assert (response.status_code, response.content) == (200, b"direct download")


# -- response shapes the local OSS does not send (a raw socket server) ---------------------


class RawServer:
    """Answers each connection on 127.0.0.1 with ``reply`` bytes, then closes it."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(self.reply)

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in the serving thread; close() alone does not.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(reply: bytes) -> RawServer:
        server = RawServer(reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


SIDECAR = b'{"version": "2.0.0", "product_key": "a1B2c3"}'  # 41+ bytes, well under 64 KiB


def test_a_body_ended_by_closing_the_connection_is_read_to_its_end(raw_server: Any) -> None:
    # GIVEN a server that sends no Content-Length and ends the body by closing (HTTP/1.1)
    server = raw_server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + SIDECAR)
    reads = reads_for(server.url, CloudCredentials(AK, SK))

    # WHEN the adapter reads it with the sidecar limit
    body = reads.read(BUCKET, "fw.bin.ota.json", 64 * 1024).data

    # THEN the whole body arrives: only the byte count decides "too large"
    assert body == SIDECAR
    assert server.requests[0].startswith(b"GET /reads-bucket/fw.bin.ota.json HTTP/1.1")


def test_a_close_delimited_body_over_the_limit_is_too_large(raw_server: Any) -> None:
    server = raw_server(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101)
    reads = reads_for(server.url, CloudCredentials(AK, SK))

    with pytest.raises(ValueError, match="larger than 100 bytes"):
        reads.read(BUCKET, "big.json", 100)
    # exactly at the limit is fine
    exact = raw_server(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100)
    assert (
        reads_for(exact.url, CloudCredentials(AK, SK)).read(BUCKET, "ok.json", 100).data
        == b"x" * 100
    )


@pytest.mark.parametrize("verb", ["GET", "HEAD"])
@pytest.mark.parametrize("length", ["abc", "12, 12", "-5", "1e3"])
def test_a_malformed_content_length_is_a_clear_transient_error(
    raw_server: Any, verb: str, length: str
) -> None:
    server = raw_server(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode() + b"{}")
    reads = reads_for(server.url, CloudCredentials(AK, SK))

    with pytest.raises(TransientError) as caught:
        if verb == "HEAD":
            reads.head(BUCKET, "fw.bin")
        else:
            reads.read(BUCKET, "fw.bin.ota.json", 1024)

    assert caught.value.code == "InvalidResponse"
    assert "Content-Length" in caught.value.message and repr(length) in caught.value.message


def test_a_body_cut_short_of_its_content_length_is_transient(raw_server: Any) -> None:
    server = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)
    reads = reads_for(server.url, CloudCredentials(AK, SK))

    with pytest.raises(TransientError) as caught:
        reads.read(BUCKET, "fw.bin.ota.json", 1024)

    assert "40 bytes" in caught.value.message


def test_a_head_without_content_length_is_transient_not_size_zero(raw_server: Any) -> None:
    server = raw_server(b'HTTP/1.1 200 OK\r\nETag: "AB"\r\nConnection: close\r\n\r\n')
    reads = reads_for(server.url, CloudCredentials(AK, SK))

    with pytest.raises(TransientError) as caught:
        reads.head(BUCKET, "fw.bin")

    assert caught.value.code == "InvalidResponse"


# -- ListObjectsV2 (folder defaults and the outcome object's check use it) -----------------


@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("prefix", ["firmware/acme/.ota-defaults.", "固件/摄像头 v2.bin"])
def test_a_listing_is_signed_as_oss2_signs_the_same_query(
    prefix: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN oss2's own ListObjectsV2 request, captured (its query has empty-valued names)
    from ota_release.adapters.oss_reads import v4_authorization

    _freeze_oss2(monkeypatch)
    captured: list[Any] = []

    def capture(self: Any, req: Any, timeout: Any) -> Any:
        captured.append(req)
        raise _Sent

    monkeypatch.setattr(oss2.http.Session, "do_request", capture)
    auth = oss2.StsAuth(AK, SK, token, auth_version="v4") if token else oss2.AuthV4(AK, SK)
    bucket = oss2.Bucket(auth, ENDPOINTS[0], "my-bucket", region="cn-shanghai")
    with pytest.raises(_Sent):
        bucket.list_objects_v2(prefix=prefix, max_keys=10, encoding_type="url")
    theirs = captured[0]

    # WHEN the adapter's signer signs the same query at the same moment
    headers = {"Host": "my-bucket.oss-cn-shanghai-internal.aliyuncs.com"}
    credentials = CloudCredentials(AK, SK, token)
    ours = v4_authorization(
        credentials, "cn-shanghai", "GET", "my-bucket", "", headers, MOMENT, theirs.params
    )

    # THEN the Authorization is oss2's, query names without a value included
    assert ours["Authorization"] == theirs.headers["authorization"]


def test_a_listing_names_every_key_under_the_prefix_with_its_etag(
    local: tuple[LocalOss, str],
) -> None:
    # GIVEN awkward keys under one prefix, and one beside it
    for key in KEYS:
        put(local, "list/" + key, key.encode())
    put(local, "listing-elsewhere.bin", b"x")
    reads = reads_for(local[1], CloudCredentials("STS.reads", "sts-secret", TOKEN))

    # WHEN the adapter lists the prefix (signed V4 with the query, checked by the local OSS)
    listed = reads.list_keys(BUCKET, "list/", 100)

    # THEN every key comes back decoded, with the ETag a HEAD reports
    assert sorted(listed.etags) == sorted("list/" + k for k in KEYS)
    for key, etag in listed.etags.items():
        info = reads.head(BUCKET, key)
        assert info is not None and info.etag == etag
    assert not listed.truncated and listed.request_id
    assert reads.list_keys(BUCKET, "list/", 2).truncated
