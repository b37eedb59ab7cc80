"""PostObject (HTML form upload): policy decoding and checking, and the form signature.

The policy is the contract a signer hands to an uploader: where the file may go, how big
it may be, until when. GenerateOTAUploadURL gives exactly such a policy, so this module
decides whether the pipeline's staged upload would be accepted by OSS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from localcloud.credentials import Credential, CredentialStore
from localcloud.oss.errors import (
    OssError,
    access_denied,
    invalid_access_key_id,
    invalid_argument,
    invalid_security_token,
    signature_does_not_match,
)

_POLICY_PREFIX = "Invalid according to Policy: "


def _policy_error(detail: str) -> OssError:
    return access_denied(_POLICY_PREFIX + detail)


def parse_expiration(value: str) -> float:
    """OSS writes ``2024-01-01T12:00:00.000Z``; accept it with or without fractions."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise invalid_argument(
            f"Invalid Policy: Invalid 'expiration' value: {value!r}.", "policy"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


@dataclass
class PostPolicy:
    """A decoded policy: expiration time and the list of conditions, unchecked."""

    expiration: float
    conditions: list[Any] = field(default_factory=list)

    @classmethod
    def decode(cls, policy_b64: str) -> PostPolicy:
        try:
            document = json.loads(base64.b64decode(policy_b64, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise invalid_argument("Invalid Policy: Invalid JSON.", "policy") from exc
        if not isinstance(document, dict) or "expiration" not in document:
            raise invalid_argument("Invalid Policy: Policy must have an expiration.", "policy")
        conditions = document.get("conditions", [])
        if not isinstance(conditions, list):
            raise invalid_argument("Invalid Policy: conditions must be a list.", "policy")
        return cls(parse_expiration(str(document["expiration"])), conditions)

    def check(self, now: float, fields: Mapping[str, str], size: int) -> None:
        """Raise the error OSS would give if the form breaks the policy.

        ``fields`` are the form fields with lower-cased names plus ``bucket``; ``size`` is
        the number of bytes in the file part.
        """
        if now > self.expiration:
            raise _policy_error("Policy expired.")
        for condition in self.conditions:
            self._check_one(condition, fields, size)

    @staticmethod
    def _check_one(condition: Any, fields: Mapping[str, str], size: int) -> None:
        described = json.dumps(condition, ensure_ascii=False)
        if isinstance(condition, dict):
            for name, expected in condition.items():
                if fields.get(name.lower()) != expected:
                    raise _policy_error(f"Policy Condition failed: {described}")
            return
        if not isinstance(condition, list) or not condition:
            raise invalid_argument(f"Invalid Policy: Invalid condition {described}.", "policy")
        op = str(condition[0]).lower()
        if op == "content-length-range" and len(condition) == 3:
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                raise OssError(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.",
                    MaxSizeAllowed=high,
                    ProposedSize=size,
                )
            if size < low:
                raise OssError(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size.",
                    MinSizeAllowed=low,
                    ProposedSize=size,
                )
            return
        if len(condition) != 3 or not str(condition[1]).startswith("$"):
            raise invalid_argument(f"Invalid Policy: Invalid condition {described}.", "policy")
        actual = fields.get(str(condition[1])[1:].lower(), "")
        expected = condition[2]
        ok: bool
        if op == "eq":
            ok = actual == expected
        elif op == "starts-with":
            ok = actual.startswith(str(expected))
        elif op == "in":
            ok = isinstance(expected, list) and actual in expected
        elif op == "not-in":
            ok = isinstance(expected, list) and actual not in expected
        else:
            raise invalid_argument(f"Invalid Policy: Unknown operator {op!r}.", "policy")
        if not ok:
            raise _policy_error(f"Policy Condition failed: {described}")


def form_signature(secret: str, policy_b64: str) -> str:
    """base64(HMAC-SHA1(secret, policy)), the V1 PostObject signature."""
    digest = hmac.new(secret.encode("utf-8"), policy_b64.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class PostAuthorization:
    """Who signed the form (None: anonymous) and the policy it carries."""

    credential: Credential | None
    policy: PostPolicy | None


def v4_form_signature(secret: str, date: str, region: str, policy_b64: str) -> str:
    """hex(HMAC-SHA256(V4 signing key, policy)), the V4 PostObject signature."""
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, policy_b64.encode("utf-8"), hashlib.sha256).hexdigest()


def authorize_form(
    fields: Mapping[str, str],
    credentials: CredentialStore,
    clock: Callable[[], float],
    region: str | None = None,
) -> PostAuthorization:
    """Check the form's key id, token and signature; the policy is checked after upload.

    A V4 form (``x-oss-signature-version: OSS4-HMAC-SHA256`` with ``x-oss-credential``,
    ``x-oss-date``, ``x-oss-signature``) is checked against ``region``; a V1 form
    (``OSSAccessKeyId``, ``Signature``) with the HMAC-SHA1 of the policy. The policy's
    expiration is checked here already, so an expired form is refused before its file
    is kept.
    """
    if fields.get("x-oss-signature-version"):
        return _authorize_v4_form(fields, credentials, clock, region)
    access_key_id = fields.get("ossaccesskeyid")
    policy_b64 = fields.get("policy")
    if not access_key_id:
        policy = PostPolicy.decode(policy_b64) if policy_b64 else None
        return PostAuthorization(None, policy)
    if not policy_b64:
        raise invalid_argument("Policy is required when OSSAccessKeyId is given.", "policy")
    signature = fields.get("signature")
    if not signature:
        raise invalid_argument("Signature is required when OSSAccessKeyId is given.", "Signature")
    cred = credentials.get(access_key_id)
    if cred is None:
        raise invalid_access_key_id(access_key_id)
    token = fields.get("x-oss-security-token")
    if cred.security_token != token:
        raise invalid_security_token(access_key_id, token)
    expected = form_signature(cred.access_key_secret, policy_b64)
    if not hmac.compare_digest(expected, signature):
        raise signature_does_not_match(access_key_id, policy_b64, signature)
    policy = PostPolicy.decode(policy_b64)
    if clock() > policy.expiration:
        raise _policy_error("Policy expired.")
    return PostAuthorization(cred, policy)


def _authorize_v4_form(
    fields: Mapping[str, str],
    credentials: CredentialStore,
    clock: Callable[[], float],
    region: str | None,
) -> PostAuthorization:
    version = fields.get("x-oss-signature-version", "")
    if version != "OSS4-HMAC-SHA256":
        raise invalid_argument(
            "The x-oss-signature-version form field is invalid.", "x-oss-signature-version", version
        )
    for name in ("x-oss-credential", "x-oss-date", "x-oss-signature", "policy"):
        if not fields.get(name):
            raise invalid_argument(f"The {name} form field is required for V4.", name)
    credential = fields["x-oss-credential"]
    pieces = credential.split("/")
    if len(pieces) != 5 or pieces[3] != "oss" or pieces[4] != "aliyun_v4_request":
        raise invalid_argument(
            "The x-oss-credential form field is invalid.", "x-oss-credential", credential
        )
    access_key_id, date, signed_region = pieces[0], pieces[1], pieces[2]
    cred = credentials.get(access_key_id)
    if cred is None:
        raise invalid_access_key_id(access_key_id)
    token = fields.get("x-oss-security-token")
    if cred.security_token != token:
        raise invalid_security_token(access_key_id, token)
    date_time = fields["x-oss-date"]
    if date_time[:8] != date or region is None or signed_region != region:
        raise signature_does_not_match(
            access_key_id, f"(x-oss-date {date_time!r} or region {signed_region!r})", ""
        )
    policy_b64 = fields["policy"]
    expected = v4_form_signature(cred.access_key_secret, date, signed_region, policy_b64)
    if not hmac.compare_digest(expected, fields["x-oss-signature"]):
        raise signature_does_not_match(access_key_id, policy_b64, fields["x-oss-signature"])
    policy = PostPolicy.decode(policy_b64)
    if clock() > policy.expiration:
        raise _policy_error("Policy expired.")
    return PostAuthorization(cred, policy)
