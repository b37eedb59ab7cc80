"""The local OSS's signature checks (V4 headers and presigned URLs, STS, V1 refused unless
legacy), its Host/path routing, and PostObject policies, exercised with the real oss2 SDK
and with ``requests`` for HTML-form uploads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import oss2
import pytest
import requests

from localcloud.oss import LocalOss

if TYPE_CHECKING:
    from tests.integration.conftest import StartOss

pytestmark = pytest.mark.integration

AK, SK = "LTAI-auth-test", "auth-test-secret"
STS_AK, STS_SK, STS_TOKEN = "STS.auth-test", "sts-secret", "sts-token-value"
REGION = "cn-shanghai"


# -- fixtures ---------------------------------------------------------------------------


KEYS = [(AK, SK), (STS_AK, STS_SK, STS_TOKEN)]


@pytest.fixture(scope="module")
def served(start_oss: StartOss) -> tuple[LocalOss, str]:
    """The module's ``oss`` and ``endpoint`` (tests/integration/conftest.py): our keys, region."""
    return start_oss("oss-auth", keys=KEYS, region=REGION)


_names = itertools.count()


@pytest.fixture
def bucket_name(oss: LocalOss, endpoint: str) -> str:
    name = f"auth-bucket-{next(_names)}"
    oss.create_bucket(name)
    return name


@pytest.fixture
def bucket(endpoint: str, bucket_name: str) -> oss2.Bucket:
    return oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, bucket_name, region=REGION)


@pytest.fixture
def form_bucket(oss: LocalOss, endpoint: str) -> oss2.Bucket:
    """A legacy bucket for the V1 PostObject form, like the IoT platform's upload bucket."""
    name = f"form-bucket-{next(_names)}"
    oss.create_bucket(name, v1_post_form=True)
    return oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, name, region=REGION)


@pytest.fixture(scope="module")
def legacy(start_oss: StartOss) -> tuple[LocalOss, str]:
    """A second local OSS started with the legacy switch: V1 accepted everywhere."""
    local, url = start_oss("oss-legacy", keys=KEYS, region=REGION, allow_v1=True)
    local.create_bucket("legacy-bucket")
    return local, url


def freeze_v4_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Make oss2's V4 signer sign at ``moment`` (it reads ``datetime.utcnow()``)."""

    class Frozen(datetime):
        @classmethod
        def utcnow(cls) -> datetime:  # type: ignore[override]
            return moment.astimezone(timezone.utc).replace(tzinfo=None)

    monkeypatch.setattr(oss2.auth, "datetime", Frozen)


def md5_upper(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


def error_fields(response: requests.Response) -> dict[str, str]:
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's reply
    return {child.tag: child.text or "" for child in root}


# -- V1 is refused, as on a bucket created today -----------------------------------------


def test_v1_signed_request_is_refused_with_403_and_ec_0002_00000080(
    endpoint: str, bucket_name: str
) -> None:
    v1 = oss2.Bucket(oss2.Auth(AK, SK), endpoint, bucket_name)

    with pytest.raises(oss2.exceptions.AccessDenied) as caught:
        v1.put_object("fw.bin", b"x")

    assert caught.value.status == 403
    assert caught.value.details["EC"] == "0002-00000080"
    assert caught.value.headers["x-oss-ec"] == "0002-00000080"
    assert "V4" in caught.value.message


def test_v1_signed_head_is_refused_too(endpoint: str, bucket_name: str) -> None:
    v1 = oss2.Bucket(oss2.Auth(AK, SK), endpoint, bucket_name)

    with pytest.raises(oss2.exceptions.AccessDenied) as caught:
        v1.head_object("fw.bin")

    assert caught.value.details["EC"] == "0002-00000080"


def test_v1_presigned_url_is_refused(bucket: oss2.Bucket, endpoint: str) -> None:
    bucket.put_object("fw.bin", b"x")
    v1 = oss2.Bucket(oss2.Auth(AK, SK), endpoint, bucket.bucket_name)

    response = requests.get(v1.sign_url("GET", "fw.bin", 60), timeout=10)
    fields = error_fields(response)

    assert response.status_code == 403
    assert (fields["Code"], fields["EC"]) == ("AccessDenied", "0002-00000080")
    assert fields["RecommendDoc"].endswith("0002-00000080")


def test_v1_sts_signature_is_refused(endpoint: str, bucket_name: str) -> None:
    v1 = oss2.Bucket(oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN), endpoint, bucket_name)

    with pytest.raises(oss2.exceptions.AccessDenied) as caught:
        v1.get_object("fw.bin")

    assert caught.value.details["EC"] == "0002-00000080"


def test_legacy_switch_accepts_and_still_verifies_v1(legacy: tuple[LocalOss, str]) -> None:
    _, url = legacy
    v1 = oss2.Bucket(oss2.Auth(AK, SK), url, "legacy-bucket")
    v1.put_object("dir/fw 1+.bin", b"v1", headers={"x-oss-meta-a": "1", "x-oss-meta-b": "2"})
    sts = oss2.Bucket(oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN), url, "legacy-bucket")
    forged = oss2.Bucket(oss2.Auth(AK, "not-the-secret"), url, "legacy-bucket")

    assert v1.get_object("dir/fw 1+.bin").read() == b"v1"
    assert [o.key for o in v1.list_objects(prefix="dir/").object_list] == ["dir/fw 1+.bin"]
    assert sts.get_object("dir/fw 1+.bin").read() == b"v1"
    assert requests.get(v1.sign_url("GET", "dir/fw 1+.bin", 60), timeout=10).content == b"v1"
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as caught:
        forged.put_object("fw.bin", b"x")
    assert caught.value.details["StringToSign"].endswith("/legacy-bucket/fw.bin")


# -- V4 header signatures --------------------------------------------------------------


def test_wrong_secret_is_rejected_with_signature_does_not_match(
    endpoint: str, bucket_name: str
) -> None:
    forged = oss2.Bucket(oss2.AuthV4(AK, "not-the-secret"), endpoint, bucket_name, region=REGION)

    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as caught:
        forged.put_object("fw.bin", b"x")

    assert caught.value.status == 403
    assert caught.value.details["CanonicalRequest"].startswith(f"PUT\n/{bucket_name}/fw.bin\n")
    assert caught.value.details["RequestId"] == caught.value.request_id
    assert caught.value.details["HostId"]


def test_wrong_secret_on_head_is_rejected_with_signature_does_not_match(
    endpoint: str, bucket_name: str
) -> None:
    forged = oss2.Bucket(oss2.AuthV4(AK, "not-the-secret"), endpoint, bucket_name, region=REGION)

    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        forged.head_object("fw.bin")


def test_unknown_access_key_is_rejected_with_invalid_access_key_id(
    endpoint: str, bucket_name: str
) -> None:
    stranger = oss2.Bucket(oss2.AuthV4("LTAI-nobody", SK), endpoint, bucket_name, region=REGION)

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        stranger.get_object("fw.bin")

    assert caught.value.status == 403
    assert caught.value.code == "InvalidAccessKeyId"


def test_skewed_date_is_rejected_with_request_time_too_skewed(
    bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_v4_clock(monkeypatch, datetime.now(timezone.utc) - timedelta(minutes=20))

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object("fw.bin", b"x")

    assert caught.value.status == 403
    assert caught.value.code == "RequestTimeTooSkewed"


def test_small_clock_difference_is_tolerated(
    bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_v4_clock(monkeypatch, datetime.now(timezone.utc) + timedelta(minutes=5))

    assert bucket.put_object("fw.bin", b"x").status == 200


def test_tampered_header_is_rejected_with_signature_does_not_match(bucket: oss2.Bucket) -> None:
    """A signed x-oss-* header changed after signing must break the signature."""
    url = bucket.sign_url("PUT", "fw.bin", 60, headers={"x-oss-meta-v": "1"})

    response = requests.put(url, data=b"x", headers={"x-oss-meta-v": "2"}, timeout=10)

    assert response.status_code == 403
    assert error_fields(response)["Code"] == "SignatureDoesNotMatch"


# -- presigned URLs ---------------------------------------------------------------------


def test_presigned_v4_url_allows_a_plain_http_get_for_awkward_keys(bucket: oss2.Bucket) -> None:
    bucket.put_object("固件/fw 2.0+.bin", b"signed")

    url = bucket.sign_url("GET", "固件/fw 2.0+.bin", 60)
    response = requests.get(url, timeout=10)

    for param in (
        "x-oss-signature-version=OSS4-HMAC-SHA256",
        "x-oss-credential=",
        "x-oss-date=",
        "x-oss-expires=60",
        "x-oss-signature=",
    ):
        assert param in url
    assert response.status_code == 200
    assert response.content == b"signed"


def test_a_presigned_v4_url_may_ask_for_seven_days_and_not_one_second_more(
    bucket: oss2.Bucket,
) -> None:
    # GIVEN V4 presigned URLs valid for exactly 7 days and for 7 days and a second
    bucket.put_object("week.bin", b"week")
    longest = bucket.sign_url("GET", "week.bin", 604800)
    too_long = bucket.sign_url("GET", "week.bin", 604801)
    # WHEN they are used THEN the first works and the second is refused as OSS refuses it
    # (error page 0002-00000232: x-oss-expires is 1 to 604800 seconds)
    assert requests.get(longest, timeout=10).content == b"week"
    refused = requests.get(too_long, timeout=10)
    assert refused.status_code == 403
    assert refused.headers.get("x-oss-ec") == "0002-00000232"
    assert b"604800" in refused.content


def test_presigned_v4_url_for_put_uploads(bucket: oss2.Bucket) -> None:
    url = bucket.sign_url("PUT", "up.bin", 60, headers={"Content-Type": "application/x-fw"})

    response = requests.put(
        url, data=b"via url", headers={"Content-Type": "application/x-fw"}, timeout=10
    )

    assert response.status_code == 200
    assert bucket.get_object("up.bin").read() == b"via url"


def test_expired_presigned_url_is_rejected_with_request_has_expired(
    bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put_object("fw.bin", b"x")
    freeze_v4_clock(monkeypatch, datetime.now(timezone.utc) - timedelta(minutes=2))
    url = bucket.sign_url("GET", "fw.bin", 60)  # signed two minutes ago, valid for one

    response = requests.get(url, timeout=10)
    fields = error_fields(response)

    assert response.status_code == 403
    assert fields["Code"] == "AccessDenied"
    assert fields["Message"] == "Request has expired."


def test_presigned_url_for_another_key_is_rejected(bucket: oss2.Bucket) -> None:
    bucket.put_object("a.bin", b"a")
    bucket.put_object("b.bin", b"b")
    url = bucket.sign_url("GET", "a.bin", 60).replace("/a.bin?", "/b.bin?")

    response = requests.get(url, timeout=10)

    assert response.status_code == 403
    assert error_fields(response)["Code"] == "SignatureDoesNotMatch"


# -- V4 ---------------------------------------------------------------------------------


def test_v4_signed_requests_are_accepted(endpoint: str, bucket_name: str) -> None:
    v4 = oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, bucket_name, region=REGION)

    v4.put_object("固件/v4 key+%.bin", b"v4", headers={"x-oss-meta-v": "4"})

    assert v4.get_object("固件/v4 key+%.bin").read() == b"v4"
    assert v4.head_object("固件/v4 key+%.bin").headers["x-oss-meta-v"] == "4"
    assert [o.key for o in oss2.ObjectIteratorV2(v4, prefix="固件/")] == ["固件/v4 key+%.bin"]


def test_v4_resumable_multipart_upload_is_accepted(
    endpoint: str, bucket_name: str, tmp_path: Any
) -> None:
    v4 = oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, bucket_name, region=REGION)
    source = tmp_path / "fw.bin"
    source.write_bytes(b"z" * (250 * 1024))

    oss2.resumable_upload(
        v4,
        "big.bin",
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path)),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
    )

    assert v4.head_object("big.bin").object_type == "Multipart"


def test_v4_with_wrong_secret_is_rejected_with_signature_does_not_match(
    endpoint: str, bucket_name: str
) -> None:
    v4 = oss2.Bucket(oss2.AuthV4(AK, "wrong"), endpoint, bucket_name, region=REGION)

    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as caught:
        v4.put_object("fw.bin", b"x")

    assert caught.value.details["CanonicalRequest"].startswith(f"PUT\n/{bucket_name}/fw.bin\n")


def test_v4_signed_for_another_region_is_rejected(endpoint: str, bucket_name: str) -> None:
    v4 = oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, bucket_name, region="cn-beijing")

    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        v4.get_object("fw.bin")


def test_presigned_v4_url_allows_a_plain_http_get(endpoint: str, bucket_name: str) -> None:
    v4 = oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, bucket_name, region=REGION)
    v4.put_object("dir/fw.bin", b"v4 url")

    response = requests.get(v4.sign_url("GET", "dir/fw.bin", 60), timeout=10)

    assert response.status_code == 200
    assert response.content == b"v4 url"


# -- STS --------------------------------------------------------------------------------


def test_sts_credentials_with_their_token_are_accepted(endpoint: str, bucket_name: str) -> None:
    auth = oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN, auth_version=oss2.AUTH_VERSION_4)
    sts = oss2.Bucket(auth, endpoint, bucket_name, region=REGION)

    sts.put_object("sts.bin", b"temporary")

    assert sts.get_object("sts.bin").read() == b"temporary"


def test_sts_credentials_with_a_wrong_token_are_rejected(endpoint: str, bucket_name: str) -> None:
    auth = oss2.StsAuth(STS_AK, STS_SK, "stolen-or-stale-token", auth_version="v4")
    sts = oss2.Bucket(auth, endpoint, bucket_name, region=REGION)

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        sts.put_object("sts.bin", b"x")

    assert caught.value.status == 403
    assert caught.value.code == "InvalidSecurityToken"
    assert "security token" in caught.value.message


def test_sts_key_without_its_token_is_rejected(endpoint: str, bucket_name: str) -> None:
    bare = oss2.Bucket(oss2.AuthV4(STS_AK, STS_SK), endpoint, bucket_name, region=REGION)

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bare.put_object("sts.bin", b"x")

    assert caught.value.code == "InvalidAccessKeyId"


def test_presigned_url_made_with_sts_credentials_works(endpoint: str, bucket_name: str) -> None:
    auth = oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN, auth_version=oss2.AUTH_VERSION_4)
    sts = oss2.Bucket(auth, endpoint, bucket_name, region=REGION)
    sts.put_object("sts.bin", b"temporary")

    url = sts.sign_url("GET", "sts.bin", 60)
    response = requests.get(url, timeout=10)

    assert "x-oss-security-token=" in url
    assert response.content == b"temporary"


# -- anonymous access -------------------------------------------------------------------


def test_anonymous_get_on_a_public_read_bucket_is_allowed(endpoint: str) -> None:
    owner = oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, "public-fw", region=REGION)
    owner.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ)
    owner.put_object("fw.bin", b"public")
    anonymous = oss2.Bucket(oss2.AnonymousAuth(), endpoint, "public-fw")

    assert anonymous.get_object("fw.bin").read() == b"public"
    assert requests.get(f"{endpoint}/public-fw/fw.bin", timeout=10).content == b"public"
    with pytest.raises(oss2.exceptions.AccessDenied):
        anonymous.put_object("fw.bin", b"overwrite")


def test_anonymous_get_on_a_private_bucket_is_denied(bucket: oss2.Bucket, endpoint: str) -> None:
    bucket.put_object("fw.bin", b"private")

    response = requests.get(f"{endpoint}/{bucket.bucket_name}/fw.bin", timeout=10)

    assert response.status_code == 403
    assert error_fields(response)["Code"] == "AccessDenied"


# -- PostObject -------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def make_policy(conditions: list[Any], expires_in: timedelta = timedelta(minutes=5)) -> str:
    document = {
        "expiration": iso(datetime.now(timezone.utc) + expires_in),
        "conditions": conditions,
    }
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


def sign_policy(secret: str, policy: str) -> str:
    digest = hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def post_form(
    endpoint: str,
    bucket: str,
    key: str,
    data: bytes,
    policy: str,
    *,
    access_key_id: str = AK,
    secret: str = SK,
    extra: dict[str, str] | None = None,
) -> requests.Response:
    """An HTML-form upload as the OSS PostObject docs lay it out: fields first, file last."""
    fields = {
        "key": key,
        "policy": policy,
        "OSSAccessKeyId": access_key_id,
        "Signature": sign_policy(secret, policy),
        "success_action_status": "201",
        **(extra or {}),
    }
    files = {"file": ("cam-2.0.0.bin", data, "application/octet-stream")}
    return requests.post(f"{endpoint}/{bucket}", data=fields, files=files, timeout=10)


def upload_policy(bucket: str, prefix: str = "ota/", max_size: int = 1024) -> str:
    return make_policy(
        [
            {"bucket": bucket},
            ["content-length-range", 1, max_size],
            ["starts-with", "$key", prefix],
        ]
    )


def test_post_object_with_a_valid_policy_is_stored(
    endpoint: str, form_bucket: oss2.Bucket, oss: LocalOss
) -> None:
    name = form_bucket.bucket_name
    data = b"firmware via form"

    response = post_form(endpoint, name, "ota/固件 1.bin", data, upload_policy(name))
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's reply

    assert response.status_code == 201
    assert root.tag == "PostResponse"
    assert root.findtext("Key") == "ota/固件 1.bin"
    assert root.findtext("ETag") == f'"{md5_upper(data)}"'
    assert form_bucket.get_object("ota/固件 1.bin").read() == data
    assert form_bucket.head_object("ota/固件 1.bin").object_type == "Normal"


def test_post_object_answers_204_by_default_with_etag_header(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    name = form_bucket.bucket_name
    policy = upload_policy(name)
    fields = {"key": "ota/a.bin", "policy": policy, "OSSAccessKeyId": AK}
    fields["Signature"] = sign_policy(SK, policy)

    response = requests.post(
        f"{endpoint}/{name}", data=fields, files={"file": ("a.bin", b"abc")}, timeout=10
    )

    assert response.status_code == 204
    assert response.headers["ETag"] == f'"{md5_upper(b"abc")}"'


def test_post_object_with_an_expired_policy_is_rejected(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    policy = make_policy([["starts-with", "$key", "ota/"]], expires_in=timedelta(minutes=-1))

    response = post_form(endpoint, form_bucket.bucket_name, "ota/a.bin", b"abc", policy)
    fields = error_fields(response)

    assert response.status_code == 403
    assert fields["Code"] == "AccessDenied"
    assert fields["Message"] == "Invalid according to Policy: Policy expired."
    assert not form_bucket.object_exists("ota/a.bin")


def test_post_object_key_outside_the_starts_with_condition_is_rejected(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    name = form_bucket.bucket_name

    response = post_form(endpoint, name, "elsewhere/a.bin", b"abc", upload_policy(name))
    fields = error_fields(response)

    assert response.status_code == 403
    assert fields["Code"] == "AccessDenied"
    assert fields["Message"].startswith("Invalid according to Policy: Policy Condition failed:")
    assert "starts-with" in fields["Message"]
    assert not form_bucket.object_exists("elsewhere/a.bin")


def test_post_object_larger_than_the_content_length_range_is_rejected(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    name = form_bucket.bucket_name

    response = post_form(
        endpoint, name, "ota/a.bin", b"x" * 2048, upload_policy(name, max_size=1024)
    )

    assert response.status_code == 400
    assert error_fields(response)["Code"] == "EntityTooLarge"
    assert not form_bucket.object_exists("ota/a.bin")


def test_post_object_with_a_bad_signature_is_rejected(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    name = form_bucket.bucket_name

    response = post_form(
        endpoint, name, "ota/a.bin", b"abc", upload_policy(name), secret="not-the-secret"
    )

    assert response.status_code == 403
    assert error_fields(response)["Code"] == "SignatureDoesNotMatch"


def test_post_object_for_another_bucket_condition_is_rejected(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    response = post_form(
        endpoint, form_bucket.bucket_name, "ota/a.bin", b"abc", upload_policy("some-other-bucket")
    )

    assert response.status_code == 403
    assert "bucket" in error_fields(response)["Message"]


def test_post_object_eq_condition_pins_the_exact_key(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    policy = make_policy([["eq", "$key", "ota/exact.bin"]])

    accepted = post_form(endpoint, form_bucket.bucket_name, "ota/exact.bin", b"a", policy)
    refused = post_form(endpoint, form_bucket.bucket_name, "ota/other.bin", b"a", policy)

    assert accepted.status_code == 201
    assert refused.status_code == 403


def test_post_object_with_sts_token_field_is_accepted(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    policy = upload_policy(form_bucket.bucket_name)

    accepted = post_form(
        endpoint,
        form_bucket.bucket_name,
        "ota/sts.bin",
        b"abc",
        policy,
        access_key_id=STS_AK,
        secret=STS_SK,
        extra={"x-oss-security-token": STS_TOKEN},
    )
    refused = post_form(
        endpoint,
        form_bucket.bucket_name,
        "ota/sts2.bin",
        b"abc",
        policy,
        access_key_id=STS_AK,
        secret=STS_SK,
    )

    assert accepted.status_code == 201
    assert refused.status_code == 403
    assert error_fields(refused)["Code"] == "InvalidAccessKeyId"


def test_post_object_keeps_metadata_fields_and_substitutes_filename(
    endpoint: str, form_bucket: oss2.Bucket
) -> None:
    response = post_form(
        endpoint,
        form_bucket.bucket_name,
        "ota/${filename}",
        b"abc",
        upload_policy(form_bucket.bucket_name),
        extra={"x-oss-meta-version": "2.0.0", "Content-Type": "application/x-firmware"},
    )

    head = form_bucket.head_object("ota/cam-2.0.0.bin")
    assert response.status_code == 201
    assert head.headers["x-oss-meta-version"] == "2.0.0"
    assert head.content_type == "application/x-firmware"


def test_post_object_raises_a_post_event(
    endpoint: str, form_bucket: oss2.Bucket, oss: LocalOss
) -> None:
    received: list[dict[str, Any]] = []

    def collect(event: dict[str, object]) -> None:
        received.append(event)

    unsubscribe = oss.subscribe(collect)
    try:
        response = post_form(
            endpoint,
            form_bucket.bucket_name,
            "ota/evt.bin",
            b"abc",
            upload_policy(form_bucket.bucket_name),
        )
        assert oss.drain()
    finally:
        unsubscribe()

    (record,) = received[0]["events"]
    assert record["eventName"] == "ObjectCreated:PostObject"
    assert record["oss"]["object"]["key"] == "ota/evt.bin"
    assert record["oss"]["object"]["size"] == 3
    assert record["responseElements"]["requestId"] == response.headers["x-oss-request-id"]


def test_rejected_post_leaves_no_temp_files(
    endpoint: str, form_bucket: oss2.Bucket, oss: LocalOss
) -> None:
    before = sorted(oss.store.tmp_dir.iterdir())

    response = post_form(
        endpoint,
        form_bucket.bucket_name,
        "ota/a.bin",
        b"x" * 600_000,
        upload_policy(form_bucket.bucket_name),
    )

    assert response.status_code == 400
    assert sorted(oss.store.tmp_dir.iterdir()) == before


def test_v1_post_form_is_refused_on_a_bucket_created_today(
    endpoint: str, bucket: oss2.Bucket
) -> None:
    # GIVEN an ordinary bucket (not the IoT platform's legacy upload bucket)
    name = bucket.bucket_name

    # WHEN the V1 form GenerateOTAUploadURL hands out is posted to it
    response = post_form(endpoint, name, "ota/a.bin", b"abc", upload_policy(name))
    fields = error_fields(response)

    # THEN it is refused as OSS refuses V1 on new buckets, and nothing is stored
    assert response.status_code == 403
    assert (fields["Code"], fields["EC"]) == ("AccessDenied", "0002-00000080")
    assert response.headers["x-oss-ec"] == "0002-00000080"
    assert not bucket.object_exists("ota/a.bin")


# -- addressing: Host first (virtual-hosted), then path ---------------------------------

OSS_HOST = f"oss-{REGION}.aliyuncs.com"


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve ``*.oss-<region>.aliyuncs.com`` to 127.0.0.1 and refuse every other name.

    So the SDK can address buckets by virtual host exactly as in the cloud while nothing
    leaves this machine. Proxies from the environment are dropped for the same reason.
    """
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name == OSS_HOST or name.endswith("." + OSS_HOST):
            return real("127.0.0.1", *args, **kwargs)
        if name in ("127.0.0.1", "localhost", "::1"):
            return real(name, *args, **kwargs)
        raise socket.gaierror(f"test resolver: {name} is not a local name")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)


def virtual_endpoint(endpoint: str) -> str:
    """``http://oss-<region>.aliyuncs.com:<port>``: the cloud's endpoint, on our port."""
    return f"http://{OSS_HOST}:{urlsplit(endpoint).port}"


def test_sdk_addressing_the_bucket_by_virtual_host_works(
    fake_dns: None, endpoint: str, bucket_name: str, oss: LocalOss
) -> None:
    # GIVEN oss2 pointed at the regional endpoint name: it sends Host: <bucket>.oss-...
    vhost = oss2.Bucket(oss2.AuthV4(AK, SK), virtual_endpoint(endpoint), bucket_name, region=REGION)
    assert vhost._make_url(bucket_name, "k").startswith(f"http://{bucket_name}.{OSS_HOST}:")

    # WHEN it writes, reads, lists and signs a URL
    vhost.put_object("固件/v 2.0+%.bin", b"by host", headers={"x-oss-meta-v": "2"})
    url = vhost.sign_url("GET", "固件/v 2.0+%.bin", 60)

    # THEN the object landed in that bucket and every request was accepted
    assert oss.read_object(bucket_name, "固件/v 2.0+%.bin") == b"by host"
    assert vhost.get_object("固件/v 2.0+%.bin").read() == b"by host"
    assert [o.key for o in oss2.ObjectIteratorV2(vhost)] == ["固件/v 2.0+%.bin"]
    assert requests.get(url, timeout=10).content == b"by host"


def test_virtual_host_with_a_wrong_secret_is_refused(
    fake_dns: None, endpoint: str, bucket_name: str
) -> None:
    forged = oss2.Bucket(
        oss2.AuthV4(AK, "wrong"), virtual_endpoint(endpoint), bucket_name, region=REGION
    )

    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as caught:
        forged.put_object("fw.bin", b"x")

    # The canonical URI is /bucket/key in virtual-hosted style too.
    assert caught.value.details["CanonicalRequest"].startswith(f"PUT\n/{bucket_name}/fw.bin\n")


def test_node_sdk_style_request_to_an_ip_with_the_bucket_in_host_is_routed_by_host(
    endpoint: str, bucket: oss2.Bucket
) -> None:
    """ali-oss given an IP endpoint requests ``http://IP:port/<key>`` and sets
    ``Host: <bucket>.oss-<region>.aliyuncs.com`` (lib/common/client/_createRequest)."""
    bucket.put_object("dir/fw.bin", b"node style")
    name = bucket.bucket_name
    cloud_url = f"http://{name}.{OSS_HOST}/dir/fw.bin"
    req = oss2.http.Request("GET", cloud_url, region=REGION, product="oss")
    oss2.AuthV4(AK, SK)._sign_request(req, name, "dir/fw.bin")
    headers = dict(req.headers, Host=f"{name}.{OSS_HOST}")

    response = requests.get(f"{endpoint}/dir/fw.bin", headers=headers, timeout=10)
    presigned = bucket_at(OSS_HOST, name).sign_url("GET", "dir/fw.bin", 60)
    by_url = requests.get(
        endpoint + presigned.split(OSS_HOST, 1)[1],
        headers={"Host": f"{name}.{OSS_HOST}"},
        timeout=10,
    )

    assert (response.status_code, response.content) == (200, b"node style")
    assert (by_url.status_code, by_url.content) == (200, b"node style")


def bucket_at(host: str, name: str) -> oss2.Bucket:
    """An SDK bucket for the cloud endpoint name, used only to sign (nothing is sent)."""
    return oss2.Bucket(oss2.AuthV4(AK, SK), f"http://{host}", name, region=REGION)


def test_bucket_name_in_host_on_an_ip_endpoint_is_routed_by_host(
    endpoint: str, bucket: oss2.Bucket
) -> None:
    # GIVEN Host: <bucket>.127.0.0.1:<port> (the endpoint host with the bucket in front)
    bucket.put_object("fw.bin", b"ip host")
    name = bucket.bucket_name
    netloc = urlsplit(endpoint).netloc
    req = oss2.http.Request("GET", f"http://{name}.{netloc}/fw.bin", region=REGION, product="oss")
    oss2.AuthV4(AK, SK)._sign_request(req, name, "fw.bin")

    # WHEN it is sent to the IP with the key alone as path
    response = requests.get(
        f"{endpoint}/fw.bin", headers=dict(req.headers, Host=f"{name}.{netloc}"), timeout=10
    )

    # THEN the bucket came from the Host header
    assert (response.status_code, response.content) == (200, b"ip host")


def test_path_style_on_an_ip_endpoint_takes_the_bucket_from_the_path(
    endpoint: str, bucket: oss2.Bucket, oss: LocalOss
) -> None:
    assert (
        bucket._make_url(bucket.bucket_name, "fw.bin") == f"{endpoint}/{bucket.bucket_name}/fw.bin"
    )
    bucket.put_object("fw.bin", b"path style")

    assert oss.read_object(bucket.bucket_name, "fw.bin") == b"path style"
    assert oss.host_bucket(urlsplit(endpoint).netloc) is None
    assert oss.host_bucket(OSS_HOST) is None
    assert oss.host_bucket(f"b.{OSS_HOST}") == "b"
    assert oss.host_bucket(f"b.oss-{REGION}-internal.aliyuncs.com:443") == "b"
    assert oss.host_bucket("b.example.com") is None


def test_virtual_host_for_a_missing_bucket_is_no_such_bucket(fake_dns: None, endpoint: str) -> None:
    ghost = oss2.Bucket(
        oss2.AuthV4(AK, SK), virtual_endpoint(endpoint), "no-such-bucket-here", region=REGION
    )

    with pytest.raises(oss2.exceptions.NoSuchBucket) as caught:
        ghost.get_object("fw.bin")

    assert caught.value.details["BucketName"] == "no-such-bucket-here"


def v4_post_fields(
    policy_conditions: list[Any], *, secret: str = SK, region: str = REGION
) -> dict[str, str]:
    """A V4 PostObject form as OSS's "POST V4 signature" document lays it out."""
    now = datetime.now(timezone.utc)
    date_time = now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{AK}/{date_time[:8]}/{region}/oss/aliyun_v4_request"
    policy = make_policy(
        [
            *policy_conditions,
            {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
            {"x-oss-credential": credential},
            {"x-oss-date": date_time},
        ]
    )
    key = ("aliyun_v4" + secret).encode()
    for part in (date_time[:8], region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return {
        "policy": policy,
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": credential,
        "x-oss-date": date_time,
        "x-oss-signature": hmac.new(key, policy.encode(), hashlib.sha256).hexdigest(),
    }


def test_v4_post_form_is_accepted_on_a_bucket_created_today(
    endpoint: str, bucket: oss2.Bucket
) -> None:
    name = bucket.bucket_name
    conditions = [{"bucket": name}, ["starts-with", "$key", "ota/"]]
    good = v4_post_fields(conditions)
    forged = v4_post_fields(conditions, secret="not-the-secret")
    elsewhere = v4_post_fields(conditions, region="cn-beijing")

    def post(fields: dict[str, str], key: str) -> requests.Response:
        return requests.post(
            f"{endpoint}/{name}",
            data={"key": key, "success_action_status": "201", **fields},
            files={"file": ("a.bin", b"v4 form")},
            timeout=10,
        )

    accepted = post(good, "ota/v4.bin")
    refused = [post(forged, "ota/forged.bin"), post(elsewhere, "ota/elsewhere.bin")]

    assert accepted.status_code == 201
    assert bucket.get_object("ota/v4.bin").read() == b"v4 form"
    assert [r.status_code for r in refused] == [403, 403]
    assert [error_fields(r)["Code"] for r in refused] == ["SignatureDoesNotMatch"] * 2
    assert not bucket.object_exists("ota/forged.bin")


def test_path_style_on_the_oss_domain_is_refused(endpoint: str, bucket: oss2.Bucket) -> None:
    # GIVEN a request for /<bucket>/<key> with Host oss-<region>.aliyuncs.com (no bucket)
    bucket.put_object("fw.bin", b"x")
    name = bucket.bucket_name
    req = oss2.http.Request("GET", f"http://{OSS_HOST}/{name}/fw.bin", region=REGION, product="oss")
    oss2.AuthV4(AK, SK)._sign_request(req, name, "fw.bin")

    response = requests.get(
        f"{endpoint}/{name}/fw.bin", headers=dict(req.headers, Host=OSS_HOST), timeout=10
    )

    # THEN it is refused as OSS refuses path style on its own domain
    assert response.status_code == 403
    assert error_fields(response)["Code"] == "SecondLevelDomainForbidden"
