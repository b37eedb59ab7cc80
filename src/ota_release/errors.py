"""Errors the ports raise, classified by what the caller should do about them."""

from __future__ import annotations


class PlatformError(Exception):
    """A call to a cloud service failed.

    ``service`` is ``oss``, ``iot`` or ``mns``; ``code`` is the service's error code when
    it sent one; ``request_id`` is kept for the notification so an operator can ask the
    provider about the exact call.
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
        self.message = message
        self.request_id = request_id
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{service} {operation} failed: {code}: {message}")


class TransientError(PlatformError):
    """Worth retrying: throttling, 5xx, timeouts, connection resets, SystemException."""


class PermanentError(PlatformError):
    """Retrying cannot help: invalid parameters, quota, permission, missing instance."""


class NotFoundError(PermanentError):
    """The named object or firmware does not exist."""


class DuplicateNameError(PermanentError):
    """CreateOTAFirmware refused a FirmwareName that is already taken."""


class RetriesExhausted(TransientError):
    """A transient failure outlived the retry budget or the function's remaining time.

    Raised out of the handler so Function Compute's asynchronous retry takes over.
    """
