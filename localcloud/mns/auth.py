"""MNS request checks, as MNS makes them before any operation runs.

- ``Authorization: MNS AK:base64(HMAC-SHA1(secret, VERB\\nContent-MD5\\nContent-Type\\nDate\\n
  <sorted x-mns-* headers>/resource))``; unknown key → 403 ``InvalidAccessKeyId``, wrong
  signature → 403 ``SignatureDoesNotMatch``;
- ``Date`` within 15 minutes of the server clock, else 408 ``TimeExpired`` (the status
  MNS's error-code table gives it);
- ``x-mns-version: 2015-06-06``;
- ``Content-MD5`` when present must match the body. The SDK sends base64 of the *hex* digest
  (not of the raw digest as RFC 1864 says); both forms are accepted, anything else is
  400 ``InvalidDegist`` (sic, MNS's spelling);
- an STS key must come with its token in the unsigned ``security-token`` header, else 403
  ``AccessDenied``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from werkzeug.wrappers import Request

from localcloud.credentials import Credential, CredentialStore
from localcloud.mns.errors import MnsError
from localcloud.mns.protocol import MNS_VERSION

MAX_CLOCK_SKEW = timedelta(minutes=15)
_MNS_AUTH = re.compile(r"^MNS ([^:\s]+):(\S+)$")


def authenticate(request: Request, credentials: CredentialStore, now: datetime) -> None:
    """Check one request; raise :class:`MnsError` as MNS would refuse it."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    access_key_id, signature = _authorization(headers)
    date_header = headers.get("date")
    if not date_header:
        raise MnsError(400, "MissingDateHeader", "Date header is required.")
    sent = _parse_date(date_header)
    if headers.get("x-mns-version") != MNS_VERSION:
        raise MnsError(
            400,
            "InvalidArgument",
            f"x-mns-version must be {MNS_VERSION} (got {headers.get('x-mns-version')!r}).",
        )
    credential = credentials.get(access_key_id)
    if credential is None:
        raise MnsError(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
    if abs(now - sent) > MAX_CLOCK_SKEW:
        raise MnsError(408, "TimeExpired", "The http request you sent is expired.")
    content_md5 = headers.get("content-md5", "")
    if content_md5:
        _check_content_md5(content_md5, request.get_data())
    expected = _signature(credential, _string_to_sign(request, headers, content_md5))
    if not hmac.compare_digest(expected, signature):
        raise MnsError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    _check_token(credential, headers.get("security-token", ""))


def _authorization(headers: Mapping[str, str]) -> tuple[str, str]:
    authorization = headers.get("authorization")
    if not authorization:
        raise MnsError(400, "MissingAuthorizationHeader", "Authorization header is required.")
    match = _MNS_AUTH.match(authorization)
    if match is None:
        raise MnsError(
            400, "InvalidAuthorizationHeader", "The Authorization header format is invalid."
        )
    access_key_id, signature = match.groups()
    return access_key_id, signature


def _parse_date(date_header: str) -> datetime:
    try:
        sent = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        raise MnsError(400, "InvalidDateHeader", "The Date header format is invalid.") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=timezone.utc)
    return sent


def _string_to_sign(request: Request, headers: Mapping[str, str], content_md5: str) -> str:
    mns_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-mns-"))
    resource = request.path + ("?" + request.query_string.decode() if request.query_string else "")
    return (
        f"{request.method}\n{content_md5}\n{headers.get('content-type', '')}\n"
        f"{headers.get('date', '')}\n{mns_headers}{resource}"
    )


def _signature(credential: Credential, string_to_sign: str) -> str:
    return base64.b64encode(
        hmac.new(
            credential.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha1
        ).digest()
    ).decode()


def _check_token(credential: Credential, token: str) -> None:
    if credential.security_token is not None and not hmac.compare_digest(
        token, credential.security_token
    ):
        raise MnsError(403, "AccessDenied", "The security token you provided is invalid.")
    if credential.security_token is None and token:
        raise MnsError(403, "AccessDenied", "A security token was sent with a long-term key.")


def _check_content_md5(header: str, body: bytes) -> None:
    digest = hashlib.md5(body)
    accepted = {
        base64.b64encode(digest.hexdigest().encode()).decode(),  # what the Python SDK sends
        base64.b64encode(digest.digest()).decode(),  # RFC 1864
    }
    if header not in accepted:
        raise MnsError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")
