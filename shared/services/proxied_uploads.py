"""The proxied upload's service side: its document row and multipart upload, the form's metadata,
and checking and queueing the object once the API has streamed the file into the bucket.

The API (api/proxied_upload.py) reads the form from the request and commits around each call here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from shared.db import Connection
from shared.errors import AppError, ErrorCode, or_not_found
from shared.input_rules import check_metadata, check_name
from shared.repositories import documents
from shared.rows import DocumentRow
from shared.services.uploads import Completion, UploadRequest, create_document, verify_and_queue
from shared.settings import Settings
from shared.storage import Storage, StreamingUpload

T = TypeVar("T")


def start_proxied_upload(
    conn: Connection,
    storage: Storage,
    settings: Settings,
    tenant_id: str,
    filename: str,
    content_type: str | None,
) -> tuple[DocumentRow, StreamingUpload]:
    """The document row and the multipart upload its bytes stream into, recorded together.

    The row expires when the upload's deadline passes, and carries the multipart upload's id: if the
    API process dies mid-stream, the reconciler marks the row `expired` and aborts the upload.
    """
    request = UploadRequest(
        filename=_checked("filename", check_name, filename), size=None, content_type=content_type
    )
    row = create_document(
        conn, settings, tenant_id, request, upload_ttl=settings.proxied_upload_timeout_seconds
    )
    writer = StreamingUpload(storage, row.object_key, row.content_type)
    return documents.set_upload_id(conn, row.id, writer.upload_id), writer


def forget_proxied_upload(conn: Connection, document_id: uuid.UUID) -> None:
    """Remove the row of a proxied upload that did not finish (its multipart upload is aborted already)."""
    documents.delete_row(conn, document_id)


def form_metadata(raw: bytes | bytearray | None) -> dict[str, Any]:
    """The form's `metadata` field: a JSON object that passes the metadata rules, else 422."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise AppError(
            "The 'metadata' field must be a JSON object.", code=ErrorCode.VALIDATION_ERROR
        ) from error
    if not isinstance(value, dict):
        raise AppError("The 'metadata' field must be a JSON object.", code=ErrorCode.VALIDATION_ERROR)
    return _checked("metadata", check_metadata, value)


def finish_proxied_upload(
    conn: Connection,
    storage: Storage,
    settings: Settings,
    tenant_id: str,
    document_id: uuid.UUID,
    *,
    size: int,
    metadata: dict[str, Any],
) -> Completion:
    """After the API streamed a file into the bucket: record what arrived, then check and queue it."""
    or_not_found(documents.fetch_row(conn, tenant_id, document_id, lock=True), "document")
    row = documents.set_upload_details(conn, document_id, size=size, metadata=metadata)
    return verify_and_queue(conn, storage, settings, row)


def _checked(name: str, check: Callable[[T], T], value: T) -> T:
    """`check(value)`, its ValueError answered as the 422 a JSON body would get."""
    try:
        return check(value)
    except ValueError as error:
        raise AppError(f"{name}: {error}", code=ErrorCode.VALIDATION_ERROR) from error
