"""Reading and managing a tenant's documents: get, list, chunks, cancel, reindex, delete."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from shared.db import Connection
from shared.errors import AppError, Conflict, DocumentFailed, NotFound
from shared.queue import task_id_for
from shared.repositories import chunks as chunk_rows
from shared.repositories import documents
from shared.services.uploads import check_object
from shared.settings import Settings
from shared.storage import Storage

Row = dict[str, Any]

STATUSES = ("awaiting_upload", "queued", "processing", "indexed", "failed", "cancelled", "expired")


def get_document(conn: Connection, tenant_id: str, document_id: uuid.UUID, *, lock: bool = False) -> Row:
    row = documents.get_document(conn, tenant_id, document_id, lock=lock)
    if row is None:
        raise NotFound("No such document.")
    return row


def encode_cursor(row: Row) -> str:
    raw = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, document_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(document_id)
    except (ValueError, binascii.Error) as error:
        raise AppError("The cursor is not one this API returned.", code="invalid_cursor") from error


def list_documents(
    conn: Connection, tenant_id: str, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    if status is not None and status not in STATUSES:
        raise AppError(
            f"Unknown status '{status}'. Use one of: {', '.join(STATUSES)}.", code="invalid_status"
        )
    after = decode_cursor(cursor) if cursor else None
    rows = documents.list_documents(conn, tenant_id, status=status, limit=limit + 1, after=after)
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def list_chunks(
    conn: Connection, tenant_id: str, document_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Row], str | None]:
    get_document(conn, tenant_id, document_id)
    try:
        after = int(cursor) if cursor else None
    except ValueError as error:
        raise AppError("The cursor is not one this API returned.", code="invalid_cursor") from error
    rows = chunk_rows.list_chunks(conn, tenant_id, document_id, limit=limit + 1, after_ordinal=after)
    next_cursor = str(rows[limit - 1]["ordinal"]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def cancel_document(conn: Connection, storage: Storage, tenant_id: str, document_id: uuid.UUID) -> Row:
    """Mark a document cancelled; a worker holding it stops at its next step (cooperative).

    An unfinished multipart upload is aborted, so the bucket frees its parts.
    """
    row = get_document(conn, tenant_id, document_id, lock=True)
    cancelled = documents.mark_cancelled(conn, document_id)
    if cancelled is None:
        raise Conflict(f"The document is already {row['status']}.", code="already_final")
    if row["upload_id"]:
        storage.abort_multipart(row["object_key"], row["upload_id"])
        cancelled = documents.set_upload_id(conn, document_id, None)
    return cancelled


def reindex_document(
    conn: Connection, storage: Storage, settings: Settings, tenant_id: str, document_id: uuid.UUID
) -> Row:
    """Queue a finished document again from its stored object, checked first as `complete` checks it
    (a document cancelled before its upload was completed never had its object checked, and an object
    can change in the bucket). The caller sends the task after commit."""
    row = get_document(conn, tenant_id, document_id, lock=True)
    if row["status"] not in ("indexed", "failed", "cancelled"):
        raise Conflict(
            f"The document is {row['status']}; only finished documents can be reindexed.",
            code="invalid_state",
        )
    info = storage.head(row["object_key"])
    if info is None:
        raise Conflict(
            "The document's object is no longer in the bucket; upload it again.", code="upload_not_found"
        )
    try:
        check_object(storage, settings, row, info)
    except DocumentFailed as failure:
        raise AppError(
            f"The stored object cannot be indexed: {failure.message}", code=failure.code, status=422
        ) from failure
    task_id = task_id_for(storage.bucket, row["object_key"], info.etag)
    return documents.mark_queued(conn, document_id, size=info.size, etag=info.etag, task_id=task_id)


def delete_document(conn: Connection, storage: Storage, tenant_id: str, document_id: uuid.UUID) -> None:
    """Remove the row (its chunks go with it) and the object. A running worker's writes are fenced off."""
    row = get_document(conn, tenant_id, document_id, lock=True)
    documents.delete_document(conn, document_id)
    if row["upload_id"]:
        storage.abort_multipart(row["object_key"], row["upload_id"])
    storage.delete(row["object_key"])
