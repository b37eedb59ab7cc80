"""Signature checks for Alibaba Cloud RPC-style APIs (the POP gateway in front of IoT Platform).

Two schemes reach the gateway from the Tea SDK (alibabacloud-tea-openapi 0.4.x):

- ``ACS3-HMAC-SHA256`` (the SDK default): everything in headers. The canonical request is
  the method, the path, the sorted percent-encoded query, the signed headers as ``k:v``
  lines, the signed-header list and the hex SHA-256 of the body; the signature is the hex
  HMAC-SHA256 of ``"ACS3-HMAC-SHA256\\n" + hex(sha256(canonical request))``.
- The classic RPC signature (``Config(signature_algorithm='v2')``): ``Signature`` in the query
  is base64 HMAC-SHA1 with key ``secret + "&"`` over
  ``METHOD&%2F&percentEncode(sorted k=v pairs joined by &)``.

The checks are deliberately as strict as the real gateway, so that a client bug (a header
changed after signing, a stale clock, a reused nonce, an STS key without its token) fails
here rather than in production. Errors carry the gateway's status and code; the Tea SDK
turns any 4xx into ``ClientException`` with that ``code``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from localcloud.credentials import Credential, CredentialStore

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
#: How far a request's clock may be from ours, as the gateway allows.
MAX_CLOCK_SKEW = timedelta(minutes=15)
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AuthError(Exception):
    """A request the gateway refuses before the service sees it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _signature_mismatch(string_to_sign: str) -> AuthError:
    # The real gateway echoes its string to sign, which is what makes a mismatch debuggable.
    return AuthError(
        400,
        "SignatureDoesNotMatch",
        "Specified signature is not matched with our calculation. "
        f"server string to sign is:{string_to_sign}",
    )


def _incomplete(detail: str) -> AuthError:
    return AuthError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}",
    )


@dataclass(frozen=True)
class AuthResult:
    """Who signed the request, how, and which API it names."""

    access_key_id: str
    scheme: str  # "ACS3-HMAC-SHA256" or "HMAC-SHA1"
    action: str
    version: str


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as both signature schemes use it (only ``-_.~`` and alphanumerics kept)."""
    return quote(value, safe="~", encoding="utf-8")


class NonceLedger:
    """Remembers signature nonces for the skew window, so a replayed request is refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()

    def use(self, access_key_id: str, nonce: str, now: datetime) -> bool:
        """Record the nonce; False when it was already used inside the window."""
        with self._lock:
            horizon = now - 2 * MAX_CLOCK_SKEW
            while self._seen:
                oldest_key, seen_at = next(iter(self._seen.items()))
                if seen_at >= horizon:
                    break
                del self._seen[oldest_key]
            key = (access_key_id, nonce)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


class RpcVerifier:
    """Verifies both RPC signature schemes against a :class:`CredentialStore`."""

    def __init__(self, credentials: CredentialStore, nonces: NonceLedger | None = None) -> None:
        self.credentials = credentials
        self.nonces = nonces or NonceLedger()

    def verify(
        self,
        *,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        body_params: Mapping[str, str],
        now: datetime,
    ) -> AuthResult:
        """Check one request; raise :class:`AuthError` when the gateway would refuse it.

        ``headers`` must be keyed by lower-case names. ``body_params`` are form fields of an
        ``application/x-www-form-urlencoded`` body (the classic scheme signs them too).
        """
        authorization = headers.get("authorization", "")
        if authorization.startswith(ACS3_ALGORITHM + " "):
            return self._verify_acs3(method, path, query, headers, body, authorization, now)
        if "Signature" in query or "Signature" in body_params:
            return self._verify_classic(method, {**body_params, **query}, now)
        if authorization:
            raise _incomplete(f"Unsupported Authorization scheme {authorization.split(' ')[0]!r}.")
        raise AuthError(400, "MissingSignature", "Signature is mandatory for this action.")

    # ACS3 ------------------------------------------------------------------------------------

    def _verify_acs3(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        authorization: str,
        now: datetime,
    ) -> AuthResult:
        fields = _parse_acs3_authorization(authorization[len(ACS3_ALGORITHM) + 1 :])
        access_key_id = fields.get("Credential", "")
        signed = [h for h in fields.get("SignedHeaders", "").split(";") if h]
        signature = fields.get("Signature", "")
        if not access_key_id or not signed or not signature:
            raise _incomplete("Authorization needs Credential, SignedHeaders and Signature.")
        missing_signed = [
            h
            for h in headers
            if (h.startswith("x-acs-") or h in ("host", "content-type")) and h not in signed
        ]
        if missing_signed:
            raise _incomplete(f"Headers must be signed: {', '.join(sorted(missing_signed))}.")
        for required in ("host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"):
            if required not in signed:
                raise _incomplete(f"{required} must be present and signed.")
        action = headers.get("x-acs-action", "")
        version = headers.get("x-acs-version", "")
        if not action:
            raise AuthError(400, "MissingAction", "Action is mandatory for this request.")
        if not version:
            raise AuthError(400, "MissingVersion", "Version is mandatory for this request.")

        credential = self._credential(access_key_id)
        _check_timestamp(headers.get("x-acs-date", ""), "x-acs-date", now)
        if headers["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
            raise AuthError(
                400,
                "InvalidContentSha256",
                "x-acs-content-sha256 does not match the SHA-256 of the request body.",
            )
        self._check_token(credential, headers.get("x-acs-security-token"))
        if credential.security_token is not None and headers.get("x-acs-accesskey-id") != (
            credential.access_key_id
        ):
            raise _incomplete("An STS request must carry x-acs-accesskey-id.")

        canonical_headers = "".join(
            f"{name}:{headers.get(name, '').strip()}\n" for name in sorted(signed)
        )
        canonical_query = "&".join(
            f"{percent_encode(k)}={percent_encode(query[k])}" for k in sorted(query)
        )
        canonical_request = "\n".join(
            [
                method.upper(),
                path or "/",
                canonical_query,
                canonical_headers,
                ";".join(sorted(signed)),
                headers["x-acs-content-sha256"],
            ]
        )
        string_to_sign = (
            f"{ACS3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        expected = hmac.new(
            credential.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise _signature_mismatch(string_to_sign)
        self._use_nonce(access_key_id, headers.get("x-acs-signature-nonce", ""), now)
        return AuthResult(access_key_id, ACS3_ALGORITHM, action, version)

    # Classic (v2) ------------------------------------------------------------------------------

    def _verify_classic(self, method: str, params: Mapping[str, str], now: datetime) -> AuthResult:
        for name in ("AccessKeyId", "SignatureMethod", "SignatureNonce", "Timestamp"):
            if not params.get(name):
                raise AuthError(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if params["SignatureMethod"] != "HMAC-SHA1":
            raise AuthError(
                400,
                "InvalidSignatureMethod",
                f"Specified signature method {params['SignatureMethod']!r} is not supported.",
            )
        if params.get("SignatureVersion", "1.0") != "1.0":
            raise AuthError(400, "InvalidSignatureVersion", "SignatureVersion must be 1.0.")
        action = params.get("Action", "")
        version = params.get("Version", "")
        if not action:
            raise AuthError(400, "MissingAction", "Action is mandatory for this request.")
        if not version:
            raise AuthError(400, "MissingVersion", "Version is mandatory for this request.")

        credential = self._credential(params["AccessKeyId"])
        _check_timestamp(params["Timestamp"], "Timestamp", now)
        self._check_token(credential, params.get("SecurityToken"))

        canonical = "&".join(
            f"{percent_encode(k)}={percent_encode(params[k])}"
            for k in sorted(params)
            if k != "Signature"
        )
        string_to_sign = f"{method.upper()}&%2F&{percent_encode(canonical)}"
        expected = base64.b64encode(
            hmac.new(
                (credential.access_key_secret + "&").encode(),
                string_to_sign.encode(),
                hashlib.sha1,
            ).digest()
        ).decode()
        if not hmac.compare_digest(expected, params["Signature"]):
            raise _signature_mismatch(string_to_sign)
        self._use_nonce(params["AccessKeyId"], params["SignatureNonce"], now)
        return AuthResult(params["AccessKeyId"], "HMAC-SHA1", action, version)

    # Shared --------------------------------------------------------------------------------------

    def _credential(self, access_key_id: str) -> Credential:
        credential = self.credentials.get(access_key_id)
        if credential is None:
            raise AuthError(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        return credential

    @staticmethod
    def _check_token(credential: Credential, token: str | None) -> None:
        # An STS key is only valid with its own token; a long-term key must not carry one.
        if credential.security_token is None:
            if token:
                raise AuthError(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                )
            return
        if not token:
            raise AuthError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified AccessKey is an STS key; its SecurityToken is missing.",
            )
        if not hmac.compare_digest(token, credential.security_token):
            raise AuthError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )

    def _use_nonce(self, access_key_id: str, nonce: str, now: datetime) -> None:
        if not nonce:
            raise AuthError(
                400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action."
            )
        if not self.nonces.use(access_key_id, nonce, now):
            raise AuthError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )


def _parse_acs3_authorization(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def _check_timestamp(value: str, name: str, now: datetime) -> None:
    try:
        stamp = datetime.strptime(value, _TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthError(
            400,
            "InvalidTimeStamp.Format",
            f"Specified {name} {value!r} is not in the ISO8601 format yyyy-MM-ddTHH:mm:ssZ.",
        ) from None
    if abs(stamp - now) > MAX_CLOCK_SKEW:
        raise AuthError(
            400,
            "InvalidTimeStamp.Expired",
            f"Specified time stamp or date value is expired ({name} {value}, server time "
            f"{now.strftime(_TIMESTAMP_FORMAT)}, allowed skew 15 minutes).",
        )
