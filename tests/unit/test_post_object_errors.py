"""PostObject refusals as the staging retry sees them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ota_release.adapters.oss import _post_error
from ota_release.errors import PermanentError, TransientError


def _refusal(status: int, code: str, message: str) -> SimpleNamespace:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
        f"{code}</Code><Message>{message}</Message><RequestId>REQ-1</RequestId></Error>"
    )
    return SimpleNamespace(status_code=status, text=text, reason="Forbidden", headers={})


def test_an_expired_policy_is_transient_so_the_retry_takes_a_fresh_ticket() -> None:
    # OSS checks the deadline when the whole request has arrived (EC 0006-00000213), so a
    # slow copy can be refused after it started in time; the next attempt has a new ticket.
    error = _post_error(
        _refusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    )

    assert isinstance(error, TransientError)
    assert (error.code, error.status, error.request_id) == ("PolicyExpired", 403, "REQ-1")


@pytest.mark.parametrize(
    "message",
    [
        'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "a"]',
        "The request signature we calculated does not match the signature you provided.",
    ],
)
def test_other_refusals_of_the_form_stay_permanent(message: str) -> None:
    error = _post_error(_refusal(403, "AccessDenied", message))

    assert isinstance(error, PermanentError) and not isinstance(error, TransientError)
    assert error.code == "AccessDenied"
