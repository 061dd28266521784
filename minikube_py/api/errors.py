"""API errors, shared by the store, the API server and every client.

Each error maps to one Kubernetes `Status` (code + reason), so an error raised deep in the
store reaches `kubectl`-style output unchanged: `Error from server (NotFound): pods "x" not found`.
"""

from __future__ import annotations


class ApiError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_status(self) -> dict:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status

    @staticmethod
    def from_status(status: dict) -> "ApiError":
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


class Invalid(ApiError):
    """A manifest failed validation; `errors` holds (field path, message) pairs."""

    code = 422
    reason = "Invalid"

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None, details: dict | None = None):
        super().__init__(message, details)
        self.errors = errors or []


_BY_REASON = {
    cls.reason: cls
    for cls in (BadRequest, NotFound, MethodNotAllowed, AlreadyExists, Conflict, Gone, Invalid)
}
