"""Errors the ports raise, classified by what the caller should do about them."""

from __future__ import annotations

from ota_release.redact import scrub


class PlatformError(Exception):
    """A call to a cloud service failed.

    ``service`` is ``oss``, ``iot`` or ``mns``; ``code`` is the service's error code when
    it sent one; ``request_id`` is kept for the notification so an operator can ask the
    provider about the exact call. The message is scrubbed of signatures and tokens
    (:mod:`ota_release.redact`): it reaches logs and notifications.
    """

    def __init__(
        self,
        service: str,
        operation: str,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.service = service
        self.operation = operation
        self.code = code
        self.message = message = scrub(message)
        self.request_id = request_id
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{service} {operation} failed: {code}: {message}")


class TransientError(PlatformError):
    """Worth retrying: throttling, 5xx, timeouts, connection resets, SystemException."""


class PermanentError(PlatformError):
    """Retrying cannot help: invalid parameters, quota, permission, missing instance."""


class InvalidRequestError(PermanentError):
    """The service refused the request's content (a parameter the sidecar supplied, or a
    value that cannot be sent as the API sends it): the release is ``rejected``, fixed by
    uploading again. Adapters raise it only for codes that blame the request."""


class AuthError(PermanentError):
    """Keys, STS token, signature or RAM permission refused: a deployment problem (the
    release is ``failed``), never the uploaded content's fault."""


class NotFoundError(PermanentError):
    """The named object or firmware does not exist."""


class DuplicateNameError(PermanentError):
    """CreateOTAFirmware refused a FirmwareName that is already taken."""


class RetriesExhausted(TransientError):
    """A transient failure outlived the retry budget or the function's remaining time.

    Raised out of the handler so Function Compute's asynchronous retry takes over.
    """
