"""Typed errors with one shape: a code a program can branch on and a sentence a person can act on.

`ErrorCode` is the one map from a failure code to its HTTP status and meaning: the API answers an
`AppError` as `{"error": code, "detail": message}` with its code's status, a failed document stores
the same code and message in its row, and `docs/http-contract.md` carries the table `markdown_table`
makes from it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

T = TypeVar("T")


class ErrorCode(StrEnum):
    """Every failure code Chute answers or stores: `status` is the HTTP status an API error with this
    code has (None: never an HTTP answer of its own), `on_document` whether a failed document may carry
    it, `meaning` one line for the docs."""

    status: int | None
    on_document: bool
    meaning: str

    def __new__(cls, value: str, status: int | None, on_document: bool, meaning: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.on_document = on_document
        member.meaning = meaning
        return member

    # -- the request cannot be served as sent (400, 422)
    BAD_REQUEST = "bad_request", 400, False, "The request cannot be served as sent; the detail says why."
    VALIDATION_ERROR = "validation_error", 422, False, "A field is missing or invalid; `errors` lists each."
    INVALID_FORM = "invalid_form", 400, False, "The multipart form is malformed, or has too many fields."
    MISSING_FILE = "missing_file", 400, False, "The form has no `file` part with a filename."
    EMPTY_FILE = "empty_file", 400, False, "The file is empty (size 0): there is nothing to index."
    INVALID_FILENAME = "invalid_filename", 400, False, "The filename is blank."
    INVALID_CURSOR = "invalid_cursor", 400, False, "The `cursor` is not one this API returned."
    INVALID_STATUS = "invalid_status", 400, False, "The `status` filter is not a document state."
    PARTS_REQUIRED = "parts_required", 400, False, "A multipart upload is completed with its parts' ETags."
    # -- who is calling (401) and what exists for them (404, 405)
    UNAUTHORIZED = "unauthorized", 401, False, "The API key (or events token) is missing, wrong or revoked."
    NOT_FOUND = "not_found", 404, False, "No such document, task or route for this tenant."
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, False, "The route does not take this HTTP method."
    UPLOAD_TIMEOUT = "upload_timeout", 408, False, "A proxied upload stalled or ran past its time limit."
    # -- conflicts with the current state (409)
    CONFLICT = "conflict", 409, False, "The request conflicts with the current state of the resource."
    ALREADY_FINAL = "already_final", 409, False, "The document is finished already: nothing to cancel."
    INVALID_STATE = "invalid_state", 409, False, "The document's state does not allow this."
    UPLOAD_NOT_FOUND = "upload_not_found", 409, True, "The object is not in the bucket: upload it first."
    UPLOAD_INCOMPLETE = "upload_incomplete", 409, False, "The bucket could not assemble the multipart upload."
    OBJECT_CHANGED = "object_changed", 409, True, "The object was replaced in the bucket after its check."
    REVOKED = "revoked", 409, False, "The API key is revoked already (`chute keys revoke`)."
    AMBIGUOUS_KEY = "ambiguous_key", 409, False, "The key prefix names more than one key (`chute keys`)."
    # -- the document cannot be indexed (413, 415, 422 when `complete` or `reindex` finds it)
    TOO_LARGE = "too_large", 413, True, "The body, file or what it unpacks to is over a limit."
    UNSUPPORTED_TYPE = "unsupported_type", 415, True, "Chute does not accept or cannot read this file type."
    TYPE_MISMATCH = "type_mismatch", 422, True, "The file's leading bytes are not those of its declared type."
    SIZE_MISMATCH = "size_mismatch", 422, True, "The object's size is not the size the upload declared."
    ENCRYPTED = "encrypted", 422, True, "The file is password-protected."
    # -- failures found while indexing, stored on the failed document only
    CORRUPT = "corrupt", None, True, "The file is damaged or not of its type and could not be read."
    NO_TEXT = "no_text", None, True, "No text could be extracted (e.g. a scanned PDF with OCR off)."
    EXTRACTOR_MISSING = "extractor_missing", None, True, "The tool this type needs (OCR, pandoc) is missing."
    TIMEOUT = "timeout", None, True, "Extraction or processing ran past its time limit."
    EMBEDDING_FAILED = "embedding_failed", None, True, "The embedding service failed or answered wrongly."
    TOO_MANY_ATTEMPTS = "too_many_attempts", None, True, "Processing was tried the maximum number of times."
    UPLOAD_EXPIRED = "upload_expired", None, True, "The upload was not completed before its URL expired."
    # -- slow down (429)
    RATE_LIMITED = "rate_limited", 429, False, "More requests per second than allowed; see `Retry-After`."
    QUOTA_EXCEEDED = "quota_exceeded", 429, False, "The tenant's document, byte or queue quota is used up."
    TOO_MANY_STREAMS = "too_many_streams", 429, False, "Too many open progress streams (tenant or process)."
    # -- Chute's side (500, 503)
    INTERNAL_ERROR = "internal_error", 500, True, "A bug or crash; logged with the request id or document id."
    EMBEDDING_DIMENSIONS_MISMATCH = (
        "embedding_dimensions_mismatch",
        500,
        False,
        "The embedding model's dimensions differ from the database's vectors (start-up check).",
    )
    UNAVAILABLE = "unavailable", 503, False, "Postgres or Redis is not answering; try again shortly."
    QUERY_TIMEOUT = "query_timeout", 503, False, "A query ran past the API's statement timeout."
    STORAGE_ERROR = "storage_error", 503, False, "The bucket refused the operation."
    STORAGE_UNAVAILABLE = "storage_unavailable", 503, False, "The bucket is not answering; try again shortly."
    HTTP_ERROR = "http_error", None, False, "Any other HTTP error, with the status it was raised with."


_BY_VALUE = {code.value: code for code in ErrorCode}


def error_code(code: ErrorCode | str) -> ErrorCode:
    """The `ErrorCode` whose value is `code`; ValueError for a code that is not in the map."""
    try:
        return _BY_VALUE[code]
    except KeyError:
        raise ValueError(f"{code!r} is not an ErrorCode") from None


def markdown_table() -> str:
    """The error-code table of `docs/http-contract.md` (a unit test keeps the page equal to it)."""
    lines = ["| Code | HTTP status | On a failed document | Meaning |", "|---|---|---|---|"]
    for code in ErrorCode:
        status = str(code.status) if code.status is not None else "—"
        lines.append(f"| `{code}` | {status} | {'yes' if code.on_document else ''} | {code.meaning} |")
    return "\n".join(lines) + "\n"


class AppError(Exception):
    """A failure the API answers with `code`'s HTTP status.

    `code` may still be a plain string (some modules pass literals until they switch to `ErrorCode`);
    it must be a known code, so every status comes from the one map.
    """

    code: ErrorCode = ErrorCode.BAD_REQUEST
    retry_after: int | None = None  # seconds, sent as `Retry-After` when set

    def __init__(
        self, message: str, *, code: ErrorCode | str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = error_code(code if code is not None else type(self).code)
        if self.code.status is None or status not in (None, self.code.status):
            # `status` is accepted only where it repeats the map (shared/db.py, until it drops it).
            raise ValueError(f"{self.code} answers {self.code.status}, not {status}")
        self.status: int = self.code.status


class NotFound(AppError):
    code = ErrorCode.NOT_FOUND


def or_not_found(found: T | None, what: str) -> T:
    """`found`, or 404 `not_found` ("No such <what>.") when it is None: another tenant's document reads
    the same as one that does not exist."""
    if found is None:
        raise NotFound(f"No such {what}.")
    return found


class Conflict(AppError):
    code = ErrorCode.CONFLICT


class PayloadTooLarge(AppError):
    code = ErrorCode.TOO_LARGE


class UnsupportedType(AppError):
    code = ErrorCode.UNSUPPORTED_TYPE


class Unauthorized(AppError):
    code = ErrorCode.UNAUTHORIZED


class TooManyRequests(AppError):
    code = ErrorCode.RATE_LIMITED

    def __init__(
        self, message: str, *, code: ErrorCode | str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class DocumentFailed(Exception):
    """A document cannot be indexed, for a reason a person can act on.

    Raised by pipeline stages; the orchestrator stores `code` and `message` on the document row and
    the document ends `failed`. Never retried: the same bytes would fail the same way. `code` must be
    a known `ErrorCode` (plain strings are accepted until the pipeline passes the enum).
    """

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        self.code = error_code(code)
        super().__init__(f"{self.code}: {message}")
        self.message = message
