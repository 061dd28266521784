"""API errors, shared by the store, the API server and every client.

Each error maps to one Kubernetes `Status` (code + reason), so an error raised deep in the
store reaches `kubectl`-style output unchanged: `Error from server (NotFound): pods "x" not found`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    code = 500
    reason = "InternalError"
    # Whether the Status carries `details` even when there are none: Kubernetes' constructors
    # for these reasons always set a StatusDetails (clients such as `kubectl debug` read it
    # without a nil check), while BadRequest, Gone and the like send none.
    always_details = True

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_status(self) -> dict[str, Any]:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details or self.always_details:
            status["details"] = self.details
        return status

    @staticmethod
    def from_status(status: dict[str, Any]) -> "ApiError":
        """Rebuild the matching error class from a Status object received over HTTP."""
        reason = status.get("reason", "")
        cls = _BY_REASON.get(reason, ApiError)
        error = cls(status.get("message", ""), details=status.get("details"))
        if cls is ApiError:
            error.code = status.get("code", 500)
            error.reason = reason or "InternalError"
        return error


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"
    always_details = False


class Unauthorized(ApiError):
    """No credential, or one the server does not know (HTTP 401)."""

    code = 401
    reason = "Unauthorized"
    always_details = False


class Forbidden(ApiError):
    """A known user asked for something it may not do (HTTP 403)."""

    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    """The requested resourceVersion is older than the compacted history: re-list, then watch."""

    code = 410
    reason = "Expired"
    always_details = False


class RequestEntityTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"
    always_details = False


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class NotAcceptable(ApiError):
    code = 406
    reason = "NotAcceptable"


class TooManyRequests(ApiError):
    """Refused for now, try again later (HTTP 429): an eviction a PodDisruptionBudget forbids."""

    code = 429
    reason = "TooManyRequests"


class InsufficientStorage(ApiError):
    """The store could not write: the disk is full or the database is not writable (HTTP 507)."""

    code = 507
    reason = "InsufficientStorage"
    always_details = False


class ServiceUnavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"
    always_details = False


class Timeout(ApiError):
    """The request did not complete in time; a write may or may not have been applied (HTTP 504)."""

    code = 504
    reason = "Timeout"


class Invalid(ApiError):
    """A manifest failed validation; `errors` holds (field path, message) pairs."""

    code = 422
    reason = "Invalid"

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None, details: dict[str, Any] | None = None):
        super().__init__(message, details)
        self.errors = errors or []


_BY_REASON = {
    cls.reason: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists, Conflict, Gone,
                RequestEntityTooLarge, UnsupportedMediaType, TooManyRequests, InsufficientStorage,
                ServiceUnavailable, Timeout, Invalid)
}
