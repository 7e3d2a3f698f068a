"""The typed rows the repositories return (documents, chunk listings, API keys) and the statuses a
document moves through (docs/architecture.md#document-states). Rows are built by psycopg's
`class_row`, one field per selected column, so a misspelt column is a mypy error rather than a
KeyError at run time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class DocumentStatus(StrEnum):
    """A document's `status` column; its values are the migrations' CHECK list."""

    AWAITING_UPLOAD = "awaiting_upload"
    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A row of `documents`, every column (the repositories select `*`)."""

    id: uuid.UUID
    tenant_id: str
    filename: str
    file_type: str
    content_type: str
    size: int | None
    sha256: str | None
    object_key: str
    etag: str | None
    status: DocumentStatus
    step: str | None
    progress: int
    chunk_count: int
    error_code: str | None
    error_message: str | None
    metadata: dict[str, Any]
    chunking: dict[str, int]
    task_id: uuid.UUID | None
    attempts: int
    lease_expires_at: datetime | None
    upload_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    indexed_at: datetime | None
    upload_id: str | None

    def __post_init__(self) -> None:
        # Postgres hands back text; the row carries the member.
        object.__setattr__(self, "status", DocumentStatus(self.status))


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk as a document's chunk listing shows it (not its vector)."""

    id: int
    ordinal: int
    text: str
    page: int | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An API key as a listing shows it: never its hash."""

    id: uuid.UUID
    tenant_id: str
    prefix: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class HashedKeyRow(KeyRow):
    """A key found to be revoked or rotated: with the hash, to publish the revocation."""

    key_hash: str


@dataclass(frozen=True, slots=True)
class LiveKey:
    """Whose a live (unrevoked, unexpired) key is, and until when."""

    tenant_id: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """What a tenant holds: documents and declared bytes, and uploads still awaiting their bytes."""

    documents: int
    bytes: int
    pending_uploads: int
