"""S3 / MinIO event notifications: an `ObjectCreated` record completes an upload like the API call.

Keys arrive URL-encoded. Unknown keys, other event types and duplicates change nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from shared.db import Connection
from shared.repositories import documents
from shared.rows import DocumentStatus
from shared.services.ingest_tasks import IngestTask
from shared.services.uploads import verify_and_queue
from shared.settings import Settings
from shared.storage import Storage


def object_created_keys(notification: dict[str, Any], bucket: str) -> list[str]:
    keys = []
    for record in notification.get("Records") or []:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith(
            ("ObjectCreated:", "s3:ObjectCreated:")
        ):
            continue
        s3 = record.get("s3") or {}
        if (s3.get("bucket") or {}).get("name") != bucket:
            continue
        key = (s3.get("object") or {}).get("key")
        if isinstance(key, str) and key:
            keys.append(unquote_plus(key))
    return keys


def handle_object_created(
    conn: Connection, storage: Storage, settings: Settings, object_key: str
) -> list[IngestTask]:
    """Queue the document awaiting this object. Returns the task to send after commit, if any."""
    row = documents.find_by_object_key(conn, object_key)
    if row is None or row.status != DocumentStatus.AWAITING_UPLOAD or row.upload_id:
        return []  # unknown, already handled, or a multipart upload the client will complete
    return verify_and_queue(conn, storage, settings, row).tasks
