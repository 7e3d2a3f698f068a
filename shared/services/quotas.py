"""What one tenant may hold at once: documents, bytes, uploads in flight. Checked before a new upload
is accepted; `GET /v1/usage` shows the figures and the limits.

The check reads the tenant's current usage in the upload's own transaction, so two uploads racing at
the very edge may both pass: the quotas bound a tenant's footprint, they are not an exact ledger.
"""

from __future__ import annotations

from typing import Any

from shared.db import Connection
from shared.errors import ErrorCode, TooManyRequests
from shared.repositories import documents
from shared.settings import Settings

# An upload slot frees when its bytes arrive or its URL expires; worth retrying after about a minute.
PENDING_RETRY_SECONDS = 60


def usage(conn: Connection, settings: Settings, tenant_id: str) -> dict[str, Any]:
    held = documents.tenant_usage(conn, tenant_id)
    return {
        "documents": held.documents,
        "bytes": held.bytes,
        "pending_uploads": held.pending_uploads,
        "limits": {
            "documents": settings.tenant_max_documents,
            "bytes": settings.tenant_max_bytes,
            "pending_uploads": settings.tenant_max_pending_uploads,
            "requests_per_second": settings.rate_limit_per_second,
            "upload_size": settings.max_upload_size,
            "chunks_per_document": settings.max_chunks,
        },
    }


def check_room_for_upload(conn: Connection, settings: Settings, tenant_id: str, size: int | None) -> None:
    """429 `quota_exceeded` when one more upload of `size` bytes would pass a quota."""
    held = documents.tenant_usage(conn, tenant_id)
    if held.pending_uploads >= settings.tenant_max_pending_uploads:
        raise TooManyRequests(
            f"{held.pending_uploads} uploads are still awaiting their bytes, the most at once; "
            "finish or cancel some first.",
            code=ErrorCode.QUOTA_EXCEEDED,
            retry_after=PENDING_RETRY_SECONDS,
        )
    if held.documents >= settings.tenant_max_documents:
        raise TooManyRequests(
            f"This tenant holds {held.documents} documents, its quota; delete some first.",
            code=ErrorCode.QUOTA_EXCEEDED,
        )
    if held.bytes + (size or 0) > settings.tenant_max_bytes:
        raise TooManyRequests(
            f"This upload would take the tenant past its {settings.tenant_max_bytes}-byte quota "
            f"({held.bytes} bytes are stored); delete some documents first.",
            code=ErrorCode.QUOTA_EXCEEDED,
        )
