"""IoT errors classified by their code first: what to retry, what blames the upload, what the
deployment (keys, token, permission), and the SDK's local failures that no retry can fix."""

from __future__ import annotations

from typing import Any

import pytest
from darabonba.exceptions import ResponseException, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from ota_release.adapters.iot import _error_for, classify_sdk_error
from ota_release.errors import (
    AuthError,
    DuplicateNameError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    TransientError,
)


def response_error(code: str, status: int) -> ResponseException:
    """What the Tea SDK raises for a gateway error (HTTP 4xx/5xx with a JSON Code)."""
    return ResponseException(
        code=code, message="refused", status_code=status, data={"RequestId": "REQ-1"}
    )


def unretryable(inner: BaseException) -> UnretryableException:
    """What the Tea SDK raises when the call failed without an answer (or never left)."""
    context: Any = RetryPolicyContext(
        retries_attempted=0, http_request=None, http_response=None, exception=inner
    )
    return UnretryableException(context)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidAccessKeyId", 400),
        ("InvalidAccessKeyId.NotFound", 404),
        ("InvalidAccessKeyId.Inactive", 400),
        ("InvalidSecurityToken.Expired", 400),
        ("InvalidSecurityToken.MismatchWithAccessKey", 400),
        ("SignatureDoesNotMatch", 400),
        ("IncompleteSignature", 400),
        ("InvalidTimeStamp.Expired", 400),
        ("Forbidden.RAM", 403),
        ("Forbidden.AccessKeyDisabled", 403),
        ("iot.common.RamActionPermissionDeny", 200),
    ],
)
def test_refused_keys_tokens_and_permissions_are_auth_errors_never_invalid_input(
    code: str, status: int
) -> None:
    error = classify_sdk_error(response_error(code, status), "CreateOTAFirmware")
    assert type(error) is AuthError
    assert (error.code, error.status, error.request_id) == (code, status, "REQ-1")


@pytest.mark.parametrize(
    "code", ["iot.system.IllegalRequest", "InvalidParameter", "MissingParameter.FirmwareName"]
)
def test_codes_that_blame_the_request_are_invalid_request_errors(code: str) -> None:
    assert type(_error_for("CreateOTAFirmware", code, "m", "R", 200)) is InvalidRequestError


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        # a known permanent code stays permanent whatever status carried it
        ("iot.system.IllegalRequest", 500, InvalidRequestError),
        ("InvalidAccessKeyId.NotFound", 503, AuthError),
        ("iot.system.InstanceNotFound", 500, PermanentError),
        ("iot.ota.FirmwareNotFound", 502, NotFoundError),
        # throttling and the documented "retry later" are transient at 400, 429 or 200
        ("Throttling", 400, TransientError),
        ("Throttling.User", 400, TransientError),
        ("Throttling.Api", 429, TransientError),
        ("iot.system.SystemException", 200, TransientError),
        # a code that names nothing: the status decides
        ("SomethingNew", 500, TransientError),
        ("SomethingNew", 429, TransientError),
        ("SomethingNew", 400, PermanentError),
    ],
)
def test_the_code_is_read_before_the_status_decides(code: str, status: int, expected: type) -> None:
    assert type(_error_for("CreateOTAFirmware", code, "m", "R", status)) is expected


def test_duplicate_name_codes_are_only_a_hint_and_any_other_refusal_stays_permanent() -> None:
    # The stand-in's spelling maps to DuplicateNameError; the platform's real code is not
    # public, so an IllegalRequest for a taken name must still be a PermanentError that
    # the pipeline follows with a lookup (it handles every PermanentError of the create).
    assert isinstance(
        _error_for("CreateOTAFirmware", "iot.ota.FirmwareNameExisted", "m", "R", 200),
        DuplicateNameError,
    )
    taken = _error_for("CreateOTAFirmware", "iot.system.IllegalRequest", "name taken", "R", 200)
    assert isinstance(taken, PermanentError) and not isinstance(taken, DuplicateNameError)


def test_a_value_the_sdk_cannot_encode_is_a_permanent_invalid_request() -> None:
    # GIVEN the SDK failed to UTF-8 encode a lone surrogate, before sending anything
    inner = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    # WHEN classified THEN it is not retried: the request itself is at fault
    error = classify_sdk_error(unretryable(inner), "CreateOTAFirmware")
    assert type(error) is InvalidRequestError
    assert error.code == "RequestEncodingError"
    assert "surrogates not allowed" in error.message


def test_a_local_type_error_is_permanent_and_a_dropped_connection_transient() -> None:
    assert type(classify_sdk_error(unretryable(TypeError("bad")), "X")) is PermanentError
    dropped = unretryable(ConnectionResetError("Connection aborted."))
    assert type(classify_sdk_error(dropped, "X")) is TransientError
    assert type(classify_sdk_error(OSError("refused"), "X")) is TransientError


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("AccessDenied", AuthError),
        ("InvalidAccessKeyId", AuthError),
        ("InvalidSecurityToken", AuthError),
        ("TopicNotExist", PermanentError),
        ("InternalError", TransientError),
    ],
)
def test_mns_refusals_of_keys_are_auth_errors(kind: str, expected: type) -> None:
    from mns.mns_exception import MNSServerException

    from ota_release.adapters import CloudCredentials
    from ota_release.adapters.mns import MnsNotifier

    class RefusingTopic:
        def publish_message(self, message: Any) -> Any:
            raise MNSServerException(kind, "refused", "REQ-M", "host")

    notifier = MnsNotifier(CloudCredentials("ak", "secret-value"), "http://127.0.0.1:1", "t")
    notifier._topic = RefusingTopic()
    with pytest.raises(TransientError if expected is TransientError else PermanentError) as got:
        notifier.publish("{}", "created")
    assert type(got.value) is expected
