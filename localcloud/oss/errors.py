"""OSS error responses: the XML body, the HTTP status, and the codes oss2 maps to exceptions."""

from __future__ import annotations

import base64
import uuid
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

_SIGNATURE_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method."
)


def new_request_id() -> str:
    """A request id shaped like OSS's (24 upper-case hex digits), unique per response."""
    return uuid.uuid4().hex[:24].upper()


class OssError(Exception):
    """An OSS error response waiting to be rendered.

    ``extra`` holds the additional elements real OSS adds for some codes (``Key``,
    ``BucketName``, ``StringToSign`` ...); callers use them when debugging a mismatch.
    ``ec`` is OSS's fine-grained error code (``0002-00000080``), sent as ``<EC>`` with its
    ``<RecommendDoc>`` and in the ``x-oss-ec`` header (OSS "Error responses", doc 32005);
    only set where a public source names it.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        ec: str | None = None,
        **extra: str | int | None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec
        self.extra = {k: str(v) for k, v in extra.items() if v is not None}

    def to_xml(self, request_id: str, host_id: str) -> bytes:
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{escape(self.code)}</Code>",
            f"<Message>{escape(self.message)}</Message>",
            f"<RequestId>{escape(request_id)}</RequestId>",
            f"<HostId>{escape(host_id)}</HostId>",
        ]
        parts.extend(f"<{k}>{escape(v)}</{k}>" for k, v in self.extra.items())
        if self.ec:  # after the code's own elements, as in OSS's NoSuchKey/NoSuchBucket bodies
            parts.append(f"<EC>{escape(self.ec)}</EC>")
            parts.append(
                f"<RecommendDoc>https://api.aliyun.com/troubleshoot?q={escape(self.ec)}"
                "</RecommendDoc>"
            )
        parts.append("</Error>\n")
        return "".join(parts).encode("utf-8")

    def to_response(self, request_id: str, host_id: str, *, head: bool = False) -> Response:
        """Render as OSS does; a HEAD response has no body, so the XML rides in ``x-oss-err``.

        oss2 decodes ``x-oss-err`` when the body is empty, which is how HEAD errors such as
        NoSuchKey still map to the right exception class.
        """
        body = self.to_xml(request_id, host_id)
        headers = {"x-oss-request-id": request_id, "Server": "AliyunOSS"}
        if self.ec:
            headers["x-oss-ec"] = self.ec
        if head:
            headers["x-oss-err"] = base64.b64encode(body).decode("ascii")
            return Response(
                b"", status=self.status, headers=headers, content_type="application/xml"
            )
        return Response(body, status=self.status, headers=headers, content_type="application/xml")


# Constructors for the errors this stand-in returns, with the wording real OSS uses.


def no_such_bucket(bucket: str) -> OssError:
    return OssError(
        404,
        "NoSuchBucket",
        "The specified bucket does not exist.",
        ec="0015-00000101",
        BucketName=bucket,
    )


def no_such_key(key: str) -> OssError:
    return OssError(
        404, "NoSuchKey", "The specified key does not exist.", ec="0026-00000001", Key=key
    )


def no_such_upload(upload_id: str) -> OssError:
    return OssError(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed.",
        UploadId=upload_id,
    )


def access_denied(message: str) -> OssError:
    return OssError(403, "AccessDenied", message)


def invalid_access_key_id(access_key_id: str) -> OssError:
    return OssError(
        403,
        "InvalidAccessKeyId",
        "The OSS Access Key Id you provided does not exist in our records.",
        OSSAccessKeyId=access_key_id,
    )


def invalid_security_token(access_key_id: str, token: str | None) -> OssError:
    """403 for an STS key sent without its token, or any key sent with a token not its own.

    OSS's 403 troubleshooting page lists InvalidSecurityToken ("The security token you
    provided is invalid") for a bad token; its PostObject error page gives InvalidAccessKeyId
    when a temporary user sends no token at all.
    """
    if token is None:
        return invalid_access_key_id(access_key_id)
    return OssError(
        403,
        "InvalidSecurityToken",
        "The security token you provided is invalid.",
        OSSAccessKeyId=access_key_id,
    )


def signature_does_not_match(
    access_key_id: str, string_to_sign: str, provided: str, canonical_request: str | None = None
) -> OssError:
    return OssError(
        403,
        "SignatureDoesNotMatch",
        _SIGNATURE_MESSAGE,
        OSSAccessKeyId=access_key_id,
        SignatureProvided=provided,
        StringToSign=string_to_sign,
        CanonicalRequest=canonical_request,
    )


def invalid_argument(message: str, name: str | None = None, value: str | None = None) -> OssError:
    return OssError(400, "InvalidArgument", message, ArgumentName=name, ArgumentValue=value)


def invalid_digest(expected: str, calculated: str) -> OssError:
    return OssError(
        400,
        "InvalidDigest",
        "The Content-MD5 you specified did not match what we received.",
        ExpectedDigest=expected,
        CalculatedDigest=calculated,
    )


def file_already_exists(key: str) -> OssError:
    return OssError(
        409,
        "FileAlreadyExists",
        "The object you specified already exists and can not be overwritten.",
        Key=key,
    )


#: The EC OSS gives a V1-signed request where V1 is no longer accepted (OSS error page
#: 0002-00000080: "OSS returns a 403 error when you call an API operation signed with a
#: V1 signature").
V1_REFUSED_EC = "0002-00000080"


def v1_signature_refused(where: str) -> OssError:
    """403 for a V1 signature (header, URL or PostObject form) on a bucket created today.

    Status and EC come from OSS's error page 0002-00000080; the code (AccessDenied) and the
    wording are assumed: no public source quotes the response body.
    """
    return OssError(
        403,
        "AccessDenied",
        f"The V1 signature ({where}) is no longer supported for this bucket. "
        "Sign the request with V4 (OSS4-HMAC-SHA256).",
        ec=V1_REFUSED_EC,
    )
