"""The adapter's own HEAD / small GET (adapters/oss_reads.py), checked two ways.

- Against oss2: the same request gets the same URL and the same V1 signature as oss2's
  ``Bucket`` / ``Auth`` / ``StsAuth`` would give it.
- Against the local OSS, which verifies every signature: metadata, bodies, limits,
  missing objects, bad keys, injected faults and a dead endpoint.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
from werkzeug.wrappers import Response

from localcloud.credentials import DEFAULT_ACCESS_KEY_ID as AK
from localcloud.credentials import DEFAULT_ACCESS_KEY_SECRET as SK
from localcloud.credentials import CredentialStore
from localcloud.oss import LocalOss
from localcloud.server import LocalServer
from ota_release.adapters import CloudCredentials
from ota_release.adapters.oss import OssObjectStore
from ota_release.adapters.oss_reads import OssReads, authorization, string_to_sign
from ota_release.errors import NotFoundError, PermanentError, TransientError

pytestmark = pytest.mark.integration

BUCKET = "reads-bucket"
KEYS = [
    "firmware/acme/cam-2.0.0.bin",
    "with space/and+plus%percent.bin",
    "固件/摄像头 v2.bin",
    "ümlaut & ampersand?query#hash.bin",
]
TOKEN = "CAIS-sts-token-for-reads"
DATE = "Fri, 27 Nov 2026 10:00:00 GMT"


# -- the same request as oss2 -------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize("verb", ["GET", "HEAD"])
def test_signature_matches_oss2s_for_the_same_request(
    key: str, token: str | None, verb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN oss2 signing a request at a fixed date
    monkeypatch.setattr(oss2.utils, "http_date", lambda *_a: DATE)
    auth = oss2.StsAuth(AK, SK, token) if token else oss2.Auth(AK, SK)
    request = oss2.http.Request(verb, "https://b.oss-cn-shanghai.aliyuncs.com/x")
    auth._sign_request(request, "b", key)
    # WHEN the adapter signs the same request
    headers = {"x-oss-security-token": token} if token else {}
    ours = authorization(
        CloudCredentials(AK, SK, token), string_to_sign(verb, DATE, "b", key, headers)
    )
    # THEN both send the same Authorization header
    assert ours == request.headers["authorization"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "endpoint",
    ["https://oss-cn-shanghai-internal.aliyuncs.com", "http://127.0.0.1:9000"],
)
def test_url_is_the_one_oss2_would_request(key: str, endpoint: str) -> None:
    reads = OssReads(CloudCredentials(AK, SK), endpoint)
    host, path = reads._target("my-bucket", key)
    scheme = endpoint.split("://")[0]
    expected = oss2.Bucket(oss2.Auth(AK, SK), endpoint, "my-bucket")._make_url("my-bucket", key)
    assert f"{scheme}://{host}{path}" == expected


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
def local(
    tmp_path_factory: pytest.TempPathFactory, faults: Faults
) -> Iterator[tuple[LocalOss, str]]:
    store = CredentialStore()
    store.add(AK, SK)
    store.add("STS.reads", "sts-secret", TOKEN)
    oss = LocalOss(Path(tmp_path_factory.mktemp("reads")), store, faults=faults)
    oss.create_bucket(BUCKET)
    with LocalServer(oss, name="oss") as server:
        oss.base_url = server.url
        yield oss, server.url
    oss.close()


def put(local: tuple[LocalOss, str], key: str, data: bytes) -> None:
    local[0].put_object(BUCKET, key, data, notify=False)


@pytest.mark.parametrize("key", KEYS)
def test_head_reports_what_oss2_reports(local: tuple[LocalOss, str], key: str) -> None:
    # GIVEN an object uploaded under an awkward key
    data = key.encode() * 10
    put(local, key, data)
    sdk = oss2.Bucket(oss2.Auth(AK, SK), local[1], BUCKET).head_object(key)
    # WHEN the adapter reads its metadata
    info = OssReads(CloudCredentials(AK, SK), local[1]).head(BUCKET, key)
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
    reads = OssReads(CloudCredentials("STS.reads", "sts-secret", TOKEN), local[1])
    assert reads.read(BUCKET, "sts/fw.bin", 100) == b"firmware"
    # Without its token the same key is refused.
    bare = OssReads(CloudCredentials("STS.reads", "sts-secret", None), local[1])
    with pytest.raises(PermanentError) as caught:
        bare.head(BUCKET, "sts/fw.bin")
    assert caught.value.status == 403


def test_head_of_a_missing_object_is_none(local: tuple[LocalOss, str]) -> None:
    assert OssReads(CloudCredentials(AK, SK), local[1]).head(BUCKET, "missing.bin") is None


def test_get_of_a_missing_object_is_not_found(local: tuple[LocalOss, str]) -> None:
    with pytest.raises(NotFoundError) as caught:
        OssReads(CloudCredentials(AK, SK), local[1]).read(BUCKET, "missing.json", 100)
    assert (caught.value.code, caught.value.status) == ("NoSuchKey", 404)
    assert caught.value.request_id


def test_a_wrong_secret_is_a_permanent_signature_error(local: tuple[LocalOss, str]) -> None:
    put(local, "auth/fw.bin", b"x")
    with pytest.raises(PermanentError) as caught:
        OssReads(CloudCredentials(AK, "wrong"), local[1]).read(BUCKET, "auth/fw.bin", 10)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert not isinstance(caught.value, TransientError)


def test_an_object_over_the_limit_is_refused_and_the_reader_goes_on(
    local: tuple[LocalOss, str],
) -> None:
    # GIVEN one object just over the limit and one at the limit
    put(local, "limit/big.json", b"x" * 1025)
    put(local, "limit/ok.json", b"y" * 1024)
    reads = OssReads(CloudCredentials(AK, SK), local[1])
    # WHEN both are read through the same reader
    with pytest.raises(ValueError, match="larger than 1024 bytes"):
        reads.read(BUCKET, "limit/big.json", 1024)
    # THEN the unread bytes did not poison the next request
    assert reads.read(BUCKET, "limit/ok.json", 1024) == b"y" * 1024
    assert reads.head(BUCKET, "limit/ok.json") is not None


def test_many_reads_share_one_connection(local: tuple[LocalOss, str]) -> None:
    put(local, "keepalive/a.json", b"a")
    reads = OssReads(CloudCredentials(AK, SK), local[1])
    reads.head(BUCKET, "keepalive/a.json")
    first = reads._conn
    for _ in range(3):
        assert reads.read(BUCKET, "keepalive/a.json", 10) == b"a"
        reads.head(BUCKET, "keepalive/a.json")
    assert reads._conn is first


def test_a_503_is_transient_with_the_service_code(
    local: tuple[LocalOss, str], faults: Faults
) -> None:
    put(local, "faults/fw.bin", b"x")
    reads = OssReads(CloudCredentials(AK, SK), local[1])
    faults.count = 2
    with pytest.raises(TransientError) as head_error:
        reads.head(BUCKET, "faults/fw.bin")
    with pytest.raises(TransientError) as get_error:
        reads.read(BUCKET, "faults/fw.bin", 10)
    assert head_error.value.status == get_error.value.status == 503
    assert get_error.value.code == "ServiceUnavailable"
    # AND once the service recovers the same reader works
    assert reads.read(BUCKET, "faults/fw.bin", 10) == b"x"


def test_an_unreachable_endpoint_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reads = OssReads(CloudCredentials(AK, SK), f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TransientError) as caught:
        reads.head(BUCKET, "fw.bin")
    assert caught.value.code == "ConnectionRefusedError"


def test_the_store_reads_small_objects_without_loading_oss2_state(
    local: tuple[LocalOss, str],
) -> None:
    # GIVEN the ObjectStore adapter the function builds
    put(local, "store/fw.bin.ota.json", b'{"version": "1.0.0"}')
    store = OssObjectStore(CloudCredentials(AK, SK), local[1], local[1])
    # WHEN it takes the two reads every invocation starts with
    info = store.head(BUCKET, "store/fw.bin.ota.json")
    body = store.read_small(BUCKET, "store/fw.bin.ota.json", 64 * 1024)
    # THEN they went through the small-read path: no oss2 Bucket was built
    assert info is not None and info.size == len(body)
    assert store._buckets == {}
