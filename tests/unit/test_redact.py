"""The logging boundary: no signature, token or remembered secret survives into a log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ota_release import function, redact
from ota_release.errors import TransientError

SECRET = "sk-remembered-secret-0123456789"
TOKEN = "CAIS+token/with=specials"
SIGNED = (
    "https://b.oss-cn-shanghai.aliyuncs.com/fw.bin?OSSAccessKeyId=STS.ak&Expires=1"
    "&Signature=c2lnbmF0dXJlLXZhbHVl&security-token=" + TOKEN.replace("+", "%2B")
)


@pytest.fixture(autouse=True)
def _remembered() -> Iterator[None]:
    redact.install()
    redact.remember(SECRET, TOKEN)
    yield
    redact.forget_all()


@pytest.mark.parametrize(
    "text",
    [
        f"GET /?FirmwareUrl={SIGNED}",
        "FirmwareUrl=https%3A%2F%2Fb%2Ffw.bin%3Fsecurity-token%3DCAIS%252Bx%26Signature%3Dsig%252F1",
        "u=https%253A%252F%252Fb%253Fsecurity-token%253DCAISx%2526Signature%253Dsig1%2526a%253Db",
        "x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-signature=0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "{'Authorization': 'OSS4-HMAC-SHA256 Credential=AK/x,Signature=0a1b2c3d4e5f6071'}",
        "{'x-acs-security-token': 'CAIS-other', 'x-mns-security-token': 'CAIS-third'}",
        '{"AccessKeySecret": "shh-not-remembered", "SecurityToken": "CAIS-json"}',
        "Authorization: FC STS.ak:c2lnbmF0dXJlLXZhbHVlLWxvbmc=",
        "access_key_secret='shh-as-a-repr'",
    ],
)
def test_every_spelling_of_a_signature_or_token_is_blanked(text: str) -> None:
    scrubbed = redact.scrub(text)
    for leaked in (
        "c2lnbmF0dXJl",
        "CAIS",
        "sig1",
        "sig%252F1",
        "0a1b2c3d4e5f",
        "shh-",
        TOKEN,
    ):
        assert leaked not in scrubbed, scrubbed
    assert redact.REDACTED in scrubbed


def test_remembered_secrets_are_blanked_in_every_encoding() -> None:
    from urllib.parse import quote, quote_plus

    for spelling in (TOKEN, quote(TOKEN, safe=""), quote_plus(TOKEN), SECRET):
        assert redact.scrub(f"seen: {spelling} here") == f"seen: {redact.REDACTED} here"


def test_ordinary_words_are_left_alone() -> None:
    text = "SignatureDoesNotMatch; SignatureMethod=HMAC-SHA1&SignatureNonce=1&Action=List"
    assert redact.scrub(text) == text


def _chained_failure() -> TransientError:
    try:
        try:
            raise ConnectionError(f"Max retries exceeded with url: /?FirmwareUrl={SIGNED}")
        except ConnectionError as inner:
            raise RuntimeError(f"SDK failed, secret {SECRET}") from inner
    except RuntimeError as sdk:
        error = TransientError("iot", "CreateOTAFirmware", "X", str(sdk))
        error.__cause__ = sdk
        return error


def test_a_root_handler_never_prints_a_chained_secret(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a plain handler on the root logger, where SDKs' loggers end up
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        # WHEN an SDK logs a request line and an exception with its chain
        sdk = logging.getLogger("urllib3.connectionpool")
        sdk.debug('"GET /?FirmwareUrl=%s HTTP/1.1" 200 12', SIGNED)
        try:
            raise _chained_failure()
        except TransientError:
            sdk.exception("call failed")
    finally:
        logging.getLogger().removeHandler(handler)
    # THEN neither that handler nor the records hold a secret, a token or a signature
    assert "Max retries exceeded" in stream.getvalue() and "GET /?" in stream.getvalue()
    for text in (stream.getvalue(), caplog.text, *(r.getMessage() for r in caplog.records)):
        for leaked in (SECRET, TOKEN, "security-token=CAIS", "c2lnbmF0dXJl"):
            assert leaked not in text


def test_the_functions_json_lines_never_carry_a_chained_secret() -> None:
    handler = function.logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        try:
            raise _chained_failure()
        except TransientError:
            function.logger.exception("could not finish %s", SIGNED)
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    [line] = [json.loads(x) for x in buffer.getvalue().splitlines()]
    assert "Max retries exceeded" in line["exception"]
    for leaked in (SECRET, TOKEN, "CAIS", "c2lnbmF0dXJl"):
        assert leaked not in buffer.getvalue()


def test_the_exception_handed_to_fc_is_cut_from_its_chain() -> None:
    error = function._for_the_runtime(_chained_failure())
    import traceback

    text = "".join(traceback.format_exception(error))
    assert "Max retries exceeded" not in text
    assert SECRET not in text and TOKEN not in text
    leaky = function._for_the_runtime(ValueError(f"bad url {SIGNED}"))
    assert "c2lnbmF0dXJl" not in str(leaky) and "ValueError" in str(leaky)


def test_remembered_values_are_bounded_and_the_newest_kept() -> None:
    fresh = [f"rotated-token-{i:04d}" for i in range(redact.MAX_REMEMBERED + 5)]
    redact.remember(*fresh)
    assert redact.scrub(fresh[-1]) == redact.REDACTED
    assert redact.scrub(fresh[0]) == fresh[0]
