"""Typed errors with one shape: a code a program can branch on and a sentence a person can act on.

The API turns an `AppError` into `{"error": code, "detail": message}` with its HTTP status; a failed
document stores the same code and message in its row.
"""

from __future__ import annotations


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"
    retry_after: int | None = None  # seconds, sent as `Retry-After` when set

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "too_large"


class UnsupportedType(AppError):
    status = 415
    code = "unsupported_type"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class TooManyRequests(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class DependencyDown(AppError):
    status = 503
    code = "unavailable"


class DocumentFailed(Exception):
    """A document cannot be indexed, for a reason a person can act on.

    Raised by pipeline stages; the orchestrator stores `code` and `message` on the document row and
    the document ends `failed`. Never retried: the same bytes would fail the same way.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
