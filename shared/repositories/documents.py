"""Document rows: the source of truth for every document's state (docs/architecture.md#i1).

Writes a worker makes are fenced by the attempt number it claimed the row with, so a worker that
lost its lease (or whose document was cancelled or deleted) can no longer change the row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import scalar_row, tuple_row
from psycopg.types.json import Jsonb

from shared.db import Connection, ReadPool, fetch_all, fetch_one, read_one
from shared.errors import ErrorCode
from shared.rows import DocumentRow, DocumentStatus, TenantUsage


def insert_document(
    conn: Connection,
    *,
    document_id: uuid.UUID,
    tenant_id: str,
    filename: str,
    file_type: str,
    content_type: str,
    size: int | None,
    sha256: str | None,
    object_key: str,
    metadata: dict[str, Any],
    chunking: dict[str, int],
    upload_expires_at: datetime | None,
) -> DocumentRow:
    row = fetch_one(
        conn,
        DocumentRow,
        """
        INSERT INTO documents (id, tenant_id, filename, file_type, content_type, size, sha256,
                               object_key, status, metadata, chunking, upload_expires_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'awaiting_upload', %s, %s, %s)
        RETURNING *
        """,
        (
            document_id,
            tenant_id,
            filename,
            file_type,
            content_type,
            size,
            sha256,
            object_key,
            Jsonb(metadata),
            Jsonb(chunking),
            upload_expires_at,
        ),
    )
    assert row is not None
    return row


_BY_ID = "SELECT * FROM documents WHERE id = %s AND tenant_id = %s"
_BY_TASK = "SELECT * FROM documents WHERE task_id = %s AND tenant_id = %s"


def fetch_row(
    conn: Connection, tenant_id: str, document_id: uuid.UUID, *, lock: bool = False
) -> DocumentRow | None:
    query = _BY_ID + " FOR UPDATE" if lock else _BY_ID
    return fetch_one(conn, DocumentRow, query, (document_id, tenant_id))


def fetch_row_by_task(conn: Connection, tenant_id: str, task_id: uuid.UUID) -> DocumentRow | None:
    return fetch_one(conn, DocumentRow, _BY_TASK, (task_id, tenant_id))


async def read_row(reads: ReadPool, tenant_id: str, document_id: uuid.UUID) -> DocumentRow | None:
    """`fetch_row` on the API's event loop: the status read clients poll."""
    return await read_one(reads, DocumentRow, _BY_ID, (document_id, tenant_id))


async def read_row_by_task(reads: ReadPool, tenant_id: str, task_id: uuid.UUID) -> DocumentRow | None:
    return await read_one(reads, DocumentRow, _BY_TASK, (task_id, tenant_id))


def list_documents(
    conn: Connection,
    tenant_id: str,
    *,
    status: DocumentStatus | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[DocumentRow]:
    """Newest first, keyset-paginated on (created_at, id)."""
    return fetch_all(
        conn,
        DocumentRow,
        """
        SELECT * FROM documents
        WHERE tenant_id = %(tenant)s
          AND (%(status)s::text IS NULL OR status = %(status)s)
          AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT %(limit)s
        """,
        {
            "tenant": tenant_id,
            "status": status,
            "after_at": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )


def set_upload_id(conn: Connection, document_id: uuid.UUID, upload_id: str | None) -> DocumentRow:
    row = fetch_one(
        conn,
        DocumentRow,
        "UPDATE documents SET upload_id = %s, updated_at = now() WHERE id = %s RETURNING *",
        (upload_id, document_id),
    )
    assert row is not None
    return row


def set_upload_details(
    conn: Connection, document_id: uuid.UUID, *, size: int, metadata: dict[str, Any]
) -> DocumentRow:
    """What a proxied upload turned out to be; the multipart upload it streamed through is complete."""
    row = fetch_one(
        conn,
        DocumentRow,
        "UPDATE documents SET size = %s, metadata = %s, upload_id = NULL, updated_at = now()"
        " WHERE id = %s RETURNING *",
        (size, Jsonb(metadata), document_id),
    )
    assert row is not None
    return row


def mark_queued(
    conn: Connection, document_id: uuid.UUID, *, size: int, etag: str, task_id: uuid.UUID
) -> DocumentRow:
    row = fetch_one(
        conn,
        DocumentRow,
        """
        UPDATE documents
        SET status = 'queued', size = %s, etag = %s, task_id = %s, step = NULL, progress = 0,
            chunk_count = 0, error_code = NULL, error_message = NULL, lease_expires_at = NULL,
            queued_at = now(), updated_at = now(), indexed_at = NULL
        WHERE id = %s
        RETURNING *
        """,
        (size, etag, task_id, document_id),
    )
    assert row is not None
    return row


def mark_failed(conn: Connection, document_id: uuid.UUID, code: str, message: str) -> DocumentRow | None:
    """Fail a document that no worker holds (upload checks, reconciliation)."""
    return fetch_one(
        conn,
        DocumentRow,
        """
        UPDATE documents
        SET status = 'failed', error_code = %s, error_message = %s, step = NULL,
            lease_expires_at = NULL, updated_at = now()
        WHERE id = %s AND status NOT IN ('indexed', 'cancelled')
        RETURNING *
        """,
        (code, message, document_id),
    )


def mark_cancelled(conn: Connection, document_id: uuid.UUID) -> DocumentRow | None:
    return fetch_one(
        conn,
        DocumentRow,
        """
        UPDATE documents
        SET status = 'cancelled', step = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE id = %s AND status NOT IN ('indexed', 'failed', 'cancelled', 'expired')
        RETURNING *
        """,
        (document_id,),
    )


def delete_row(conn: Connection, document_id: uuid.UUID) -> None:
    conn.execute("DELETE FROM documents WHERE id = %s", (document_id,))


# -- the worker's side: claim, progress, finish --------------------------------------------------


def claim_fairest(conn: Connection, lease_seconds: int) -> DocumentRow | None:
    """Take the queued document of the tenant served least recently (oldest first within a tenant),
    and mark that tenant served: claims go round-robin between tenants with queued documents.

    Returns the row with its new `attempts`, or None when nothing is queued (or all of it is being
    claimed by other workers right now).
    """
    return fetch_one(
        conn,
        DocumentRow,
        """
        WITH next AS (
            SELECT d.id, d.tenant_id
            FROM documents d JOIN tenants t ON t.id = d.tenant_id
            WHERE d.status = 'queued'
            ORDER BY t.last_claimed_at NULLS FIRST, d.queued_at, d.id
            LIMIT 1
            FOR UPDATE OF d SKIP LOCKED
        ), served AS (
            UPDATE tenants SET last_claimed_at = clock_timestamp() FROM next WHERE tenants.id = next.tenant_id
        )
        UPDATE documents
        SET status = 'processing', step = 'downloading', progress = 0, attempts = attempts + 1,
            lease_expires_at = now() + make_interval(secs => %s), updated_at = now()
        FROM next
        WHERE documents.id = next.id
        RETURNING documents.*
        """,
        (lease_seconds,),
    )


def claim_document(conn: Connection, document_id: uuid.UUID, lease_seconds: int) -> DocumentRow | None:
    """Take a queued document, or one whose previous holder's lease ran out.

    Returns the row with its new `attempts`, which fences every later write, or None when the
    document is not ours to process (final, cancelled, deleted, or held by a live worker).
    """
    return fetch_one(
        conn,
        DocumentRow,
        """
        UPDATE documents
        SET status = 'processing', step = 'downloading', progress = 0, attempts = attempts + 1,
            lease_expires_at = now() + make_interval(secs => %s), updated_at = now()
        WHERE id = %s
          AND (status = 'queued' OR (status = 'processing' AND lease_expires_at < now()))
        RETURNING *
        """,
        (lease_seconds, document_id),
    )


def lease_is_live(conn: Connection, document_id: uuid.UUID) -> bool:
    """Whether another worker holds this processing document under a lease that has not run out."""
    row = conn.execute(
        "SELECT 1 FROM documents WHERE id = %s AND status = 'processing' AND lease_expires_at >= now()",
        (document_id,),
    ).fetchone()
    return row is not None


def report_progress(
    conn: Connection, document_id: uuid.UUID, attempt: int, *, step: str, progress: int, lease_seconds: int
) -> bool:
    """Record the step and renew the lease. False when the document is no longer ours (cancelled)."""
    row = conn.execute(
        """
        UPDATE documents
        SET step = %s, progress = %s, updated_at = now(),
            lease_expires_at = now() + make_interval(secs => %s)
        WHERE id = %s AND attempts = %s AND status = 'processing'
        RETURNING id
        """,
        (step, progress, lease_seconds, document_id, attempt),
    ).fetchone()
    return row is not None


def renew_lease(conn: Connection, document_id: uuid.UUID, attempt: int, lease_seconds: int) -> bool:
    row = conn.execute(
        """
        UPDATE documents SET lease_expires_at = now() + make_interval(secs => %s)
        WHERE id = %s AND attempts = %s AND status = 'processing'
        RETURNING id
        """,
        (lease_seconds, document_id, attempt),
    ).fetchone()
    return row is not None


def finish_indexed(conn: Connection, document_id: uuid.UUID, attempt: int, chunk_count: int) -> bool:
    row = conn.execute(
        """
        UPDATE documents
        SET status = 'indexed', step = NULL, progress = 100, chunk_count = %s,
            lease_expires_at = NULL, indexed_at = now(), updated_at = now()
        WHERE id = %s AND attempts = %s AND status = 'processing'
        RETURNING id
        """,
        (chunk_count, document_id, attempt),
    ).fetchone()
    return row is not None


def finish_failed(conn: Connection, document_id: uuid.UUID, attempt: int, code: str, message: str) -> bool:
    row = conn.execute(
        """
        UPDATE documents
        SET status = 'failed', step = NULL, error_code = %s, error_message = %s,
            lease_expires_at = NULL, updated_at = now()
        WHERE id = %s AND attempts = %s AND status = 'processing'
        RETURNING id
        """,
        (code, message, document_id, attempt),
    ).fetchone()
    return row is not None


def release_for_retry(conn: Connection, document_id: uuid.UUID, attempt: int) -> bool:
    """Hand a document back to the queue after a transient failure (storage or database down)."""
    row = conn.execute(
        """
        UPDATE documents
        SET status = 'queued', step = NULL, progress = 0, lease_expires_at = NULL, queued_at = now(),
            updated_at = now()
        WHERE id = %s AND attempts = %s AND status = 'processing'
        RETURNING id
        """,
        (document_id, attempt),
    ).fetchone()
    return row is not None


# -- the reconciler's side -----------------------------------------------------------------------


def stale_processing(conn: Connection, limit: int) -> list[DocumentRow]:
    """Processing documents whose worker stopped renewing its lease (it died or lost its host)."""
    return fetch_all(
        conn,
        DocumentRow,
        """
        SELECT * FROM documents
        WHERE status = 'processing' AND lease_expires_at < now()
        ORDER BY lease_expires_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
        """,
        (limit,),
    )


def requeue(conn: Connection, document_id: uuid.UUID) -> DocumentRow | None:
    return fetch_one(
        conn,
        DocumentRow,
        """
        UPDATE documents
        SET status = 'queued', step = NULL, progress = 0, lease_expires_at = NULL,
            queued_at = now(), updated_at = now()
        WHERE id = %s AND status IN ('queued', 'processing')
        RETURNING *
        """,
        (document_id,),
    )


def queued_count(conn: Connection) -> int:
    return int(_value(conn, "SELECT count(*) AS n FROM documents WHERE status = 'queued'"))


def long_queued(conn: Connection, older_than_seconds: int, limit: int) -> list[DocumentRow]:
    """Documents queued a while ago: their message may have been lost."""
    return _waiting_since(conn, DocumentStatus.QUEUED, "queued_at", older_than_seconds, limit)


def waiting_uploads(conn: Connection, older_than_seconds: int, limit: int) -> list[DocumentRow]:
    """Uploads not completed a while after they were presigned (the object may have arrived anyway)."""
    return _waiting_since(conn, DocumentStatus.AWAITING_UPLOAD, "created_at", older_than_seconds, limit)


def _waiting_since(
    conn: Connection, status: DocumentStatus, since: str, older_than_seconds: int, limit: int
) -> list[DocumentRow]:
    """Documents in `status` since (their column `since`) more than `older_than_seconds`, oldest
    first, locked for this transaction; rows another transaction holds are skipped."""
    query = sql.SQL(
        """
        SELECT * FROM documents
        WHERE status = {status} AND {since} < now() - make_interval(secs => %s)
        ORDER BY {since}
        LIMIT %s
        FOR UPDATE SKIP LOCKED
        """
    ).format(status=sql.Literal(status.value), since=sql.Identifier(since))
    return fetch_all(conn, DocumentRow, query, (older_than_seconds, limit))


def mark_expired(conn: Connection, document_id: uuid.UUID) -> DocumentRow | None:
    return fetch_one(
        conn,
        DocumentRow,
        """
        UPDATE documents
        SET status = 'expired', upload_id = NULL, error_code = %s,
            error_message = 'The upload was not completed before its presigned URL expired; upload again.',
            updated_at = now()
        WHERE id = %s AND status = 'awaiting_upload'
        RETURNING *
        """,
        (ErrorCode.UPLOAD_EXPIRED, document_id),
    )


def find_by_object_key(conn: Connection, object_key: str) -> DocumentRow | None:
    return fetch_one(
        conn, DocumentRow, "SELECT * FROM documents WHERE object_key = %s FOR UPDATE", (object_key,)
    )


def tenant_usage(conn: Connection, tenant_id: str) -> TenantUsage:
    """What a tenant holds: documents and declared bytes (expired and cancelled ones hold nothing),
    and uploads still awaiting their bytes."""
    row = fetch_one(
        conn,
        TenantUsage,
        """
        SELECT count(*) AS documents,
               coalesce(sum(size), 0)::bigint AS bytes,
               count(*) FILTER (WHERE status = 'awaiting_upload') AS pending_uploads
        FROM documents
        WHERE tenant_id = %s AND status NOT IN ('expired', 'cancelled')
        """,
        (tenant_id,),
    )
    assert row is not None
    return row


# -- figures for /metrics ------------------------------------------------------------------------


def status_counts(conn: Connection) -> dict[DocumentStatus, int]:
    rows = conn.cursor(row_factory=tuple_row).execute(
        "SELECT status, count(*) AS n FROM documents GROUP BY status"
    )
    return {DocumentStatus(status): n for status, n in rows}


def failure_counts(conn: Connection) -> dict[str, int]:
    rows = conn.cursor(row_factory=tuple_row).execute(
        "SELECT error_code, count(*) AS n FROM documents WHERE status = 'failed' GROUP BY error_code"
    )
    return {code or "unknown": n for code, n in rows}


def oldest_queued_seconds(conn: Connection) -> float:
    age = _value(
        conn,
        "SELECT coalesce(extract(epoch FROM now() - min(queued_at)), 0) AS age"
        " FROM documents WHERE status = 'queued'",
    )
    return float(age)


def _value(conn: Connection, query: str) -> Any:
    """The single value `query` selects (an aggregate: it always has a row)."""
    return conn.cursor(row_factory=scalar_row).execute(query).fetchone()
