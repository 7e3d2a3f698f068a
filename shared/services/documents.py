"""Reading and managing a tenant's documents: read, list, chunks, cancel, reindex, delete; the task view."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.db import Connection, ReadPool
from shared.errors import AppError, Conflict, DocumentFailed, ErrorCode, or_not_found
from shared.repositories import chunks as chunk_rows
from shared.repositories import documents
from shared.rows import ChunkRow, DocumentRow, DocumentStatus
from shared.services.uploads import Completion, check_object, queue_checked
from shared.settings import Settings
from shared.storage import Storage

# What a document may be reindexed from: it is not on its way anywhere.
_REINDEXABLE = (DocumentStatus.INDEXED, DocumentStatus.FAILED, DocumentStatus.CANCELLED)


def _locked(conn: Connection, tenant_id: str, document_id: uuid.UUID) -> DocumentRow:
    """The tenant's document row, locked for this transaction; 404 when there is none."""
    return or_not_found(documents.fetch_row(conn, tenant_id, document_id, lock=True), "document")


async def read_document(reads: ReadPool, tenant_id: str, document_id: uuid.UUID) -> DocumentRow:
    """The document row, read on the API's event loop (the status clients poll), or 404."""
    return or_not_found(await find_document(reads, tenant_id, document_id), "document")


async def find_document(reads: ReadPool, tenant_id: str, document_id: uuid.UUID) -> DocumentRow | None:
    """The document row, or None once it is deleted (the progress stream ends then)."""
    return await documents.read_row(reads, tenant_id, document_id)


async def read_task(reads: ReadPool, tenant_id: str, task_id: uuid.UUID) -> DocumentRow:
    """The row of the document a task id belongs to, or 404 `No such task.`"""
    return or_not_found(await documents.read_row_by_task(reads, tenant_id, task_id), "task")


def encode_cursor(row: DocumentRow) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, document_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(document_id)
    except (ValueError, binascii.Error) as error:
        raise AppError("The cursor is not one this API returned.", code=ErrorCode.INVALID_CURSOR) from error


def list_documents(
    conn: Connection, tenant_id: str, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[DocumentRow], str | None]:
    wanted = parse_status(status) if status is not None else None
    after = decode_cursor(cursor) if cursor else None
    rows = documents.list_documents(conn, tenant_id, status=wanted, limit=limit + 1, after=after)
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def parse_status(status: str) -> DocumentStatus:
    """A status a client named in a filter, or 422 `invalid_status` listing the known ones."""
    try:
        return DocumentStatus(status)
    except ValueError as error:
        raise AppError(
            f"Unknown status '{status}'. Use one of: {', '.join(DocumentStatus)}.",
            code=ErrorCode.INVALID_STATUS,
        ) from error


def list_chunks(
    conn: Connection, tenant_id: str, document_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[ChunkRow], str | None]:
    or_not_found(documents.fetch_row(conn, tenant_id, document_id), "document")
    try:
        after = int(cursor) if cursor else None
    except ValueError as error:
        raise AppError("The cursor is not one this API returned.", code=ErrorCode.INVALID_CURSOR) from error
    rows = chunk_rows.list_chunks(conn, tenant_id, document_id, limit=limit + 1, after_ordinal=after)
    next_cursor = str(rows[limit - 1].ordinal) if len(rows) > limit else None
    return rows[:limit], next_cursor


def cancel_document(
    conn: Connection, storage: Storage, tenant_id: str, document_id: uuid.UUID
) -> DocumentRow:
    """Mark a document cancelled; a worker holding it stops at its next step (cooperative).

    An unfinished multipart upload is aborted, so the bucket frees its parts.
    """
    row = _locked(conn, tenant_id, document_id)
    cancelled = documents.mark_cancelled(conn, document_id)
    if cancelled is None:
        raise Conflict(f"The document is already {row.status}.", code=ErrorCode.ALREADY_FINAL)
    if row.upload_id:
        storage.abort_multipart(row.object_key, row.upload_id)
        cancelled = documents.set_upload_id(conn, document_id, None)
    return cancelled


def cancel_task(conn: Connection, storage: Storage, tenant_id: str, task_id: uuid.UUID) -> DocumentRow:
    """`cancel_document` for the document a task id belongs to; 404 `No such task.`"""
    row = or_not_found(documents.fetch_row_by_task(conn, tenant_id, task_id), "task")
    return cancel_document(conn, storage, tenant_id, row.id)


def reindex_document(
    conn: Connection, storage: Storage, settings: Settings, tenant_id: str, document_id: uuid.UUID
) -> Completion:
    """Queue a finished document again from its stored object, checked first as `complete` checks it
    (a document cancelled before its upload was completed never had its object checked, and an object
    can change in the bucket). An object that fails the check is refused with its code's status and
    the document is left as it was. The caller sends the returned task after commit."""
    row = _locked(conn, tenant_id, document_id)
    if row.status not in _REINDEXABLE:
        raise Conflict(
            f"The document is {row.status}; only finished documents can be reindexed.",
            code=ErrorCode.INVALID_STATE,
        )
    try:
        info = check_object(
            storage,
            settings,
            row,
            missing="The document's object is no longer in the bucket; upload it again.",
        )
    except DocumentFailed as failure:
        raise AppError(
            f"The stored object cannot be indexed: {failure.message}", code=failure.code
        ) from failure
    return queue_checked(conn, storage, row, info)


def delete_document(conn: Connection, storage: Storage, tenant_id: str, document_id: uuid.UUID) -> None:
    """Remove the row (its chunks go with it) and the object. A running worker's writes are fenced off."""
    row = _locked(conn, tenant_id, document_id)
    documents.delete_row(conn, document_id)
    if row.upload_id:
        storage.abort_multipart(row.object_key, row.upload_id)
    storage.delete(row.object_key)


@dataclass(frozen=True, slots=True)
class DocumentFigures:
    """What `/metrics` reports about documents, across tenants."""

    by_status: dict[DocumentStatus, int]  # every status, 0 where none
    failures: dict[str, int]  # failed documents by error code
    oldest_queued_seconds: float


def document_figures(conn: Connection) -> DocumentFigures:
    counts = documents.status_counts(conn)
    return DocumentFigures(
        by_status={status: counts.get(status, 0) for status in DocumentStatus},
        failures=documents.failure_counts(conn),
        oldest_queued_seconds=documents.oldest_queued_seconds(conn),
    )
