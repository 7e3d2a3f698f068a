"""Request and response bodies, as docs/http-contract.md describes them."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.errors import ErrorCode
from shared.input_rules import check_metadata, check_name, check_text
from shared.pipeline.chunking import ChunkingSettings
from shared.rows import ChunkRow, DocumentRow
from shared.services.uploads import UploadRequest

Name = Annotated[str, AfterValidator(check_name)]
Text = Annotated[str, AfterValidator(check_text)]
Metadata = Annotated[dict[str, Any], AfterValidator(check_metadata)]


class UploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: Name = Field(min_length=1, max_length=1000)
    size: int = Field(ge=0, description="Exact size in bytes; the bucket object must match it.")
    content_type: Name | None = Field(default=None, max_length=200)
    metadata: Metadata = Field(default_factory=dict)
    chunking: ChunkingSettings | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    def to_request(self) -> UploadRequest:
        return UploadRequest(
            filename=self.filename,
            size=self.size,
            content_type=self.content_type,
            metadata=self.metadata,
            chunking=self.chunking,
            sha256=self.sha256.lower() if self.sha256 else None,
        )


class PresignedPostOut(BaseModel):
    method: Literal["POST"] = "POST"
    url: str
    fields: dict[str, str]
    expires_at: datetime


class PartUrl(BaseModel):
    part_number: int
    url: str


class MultipartOut(BaseModel):
    method: Literal["MULTIPART"] = "MULTIPART"
    upload_id: str
    part_size: int
    parts: list[PartUrl]
    expires_at: datetime


class UploadOut(BaseModel):
    document_id: uuid.UUID
    object_key: str
    status: str
    upload: PresignedPostOut | MultipartOut
    complete_url: str
    status_url: str


class BatchIn(BaseModel):
    files: list[UploadIn] = Field(min_length=1, max_length=100)


class ErrorOut(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer (api/errors.py): a code a program branches on, a sentence a person acts on."""

    error: ErrorCode
    detail: str
    errors: list[dict[str, Any]] | None = Field(default=None, description="validation_error only: each field")


class RejectedOut(BaseModel):
    filename: str
    status: Literal["rejected"] = "rejected"
    error: ErrorOut


class BatchOut(BaseModel):
    batch_size: int
    uploads: list[UploadOut | RejectedOut]


class CompletedPart(BaseModel):
    part_number: int = Field(ge=1, le=10_000)
    etag: Name = Field(min_length=1, max_length=200)


class CompleteIn(BaseModel):
    parts: list[CompletedPart] | None = Field(default=None, max_length=10_000)

    def part_etags(self) -> list[tuple[int, str]] | None:
        return [(p.part_number, p.etag) for p in self.parts] if self.parts else None


class QueuedOut(BaseModel):
    document_id: uuid.UUID
    task_id: uuid.UUID
    status: str
    status_url: str
    task_url: str


class DocumentOut(BaseModel):
    document_id: uuid.UUID
    filename: str
    content_type: str
    size: int | None
    object_key: str
    status: str
    step: str | None
    progress: int
    chunk_count: int
    error: ErrorOut | None
    metadata: dict[str, Any]
    task_id: uuid.UUID | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None

    @classmethod
    def from_row(cls, row: DocumentRow) -> DocumentOut:
        error = ErrorOut(code=row.error_code, message=row.error_message or "") if row.error_code else None
        return cls.model_validate({**asdict(row), "document_id": row.id, "error": error})


class DocumentListOut(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


class ChunkOut(BaseModel):
    chunk_id: int
    ordinal: int
    text: str
    page: int | None
    metadata: dict[str, Any]

    @classmethod
    def from_row(cls, row: ChunkRow) -> ChunkOut:
        return cls.model_validate({**asdict(row), "chunk_id": row.id})


class ChunkListOut(BaseModel):
    items: list[ChunkOut]
    next_cursor: str | None


class TaskProgress(BaseModel):
    step: str | None
    progress: int


class TaskResult(BaseModel):
    document_id: uuid.UUID
    chunk_count: int


class TaskOut(BaseModel):
    task_id: uuid.UUID
    status: Literal["PENDING", "STARTED", "PROCESSING", "SUCCESS", "FAILURE", "REVOKED"]
    progress: TaskProgress | None
    result: TaskResult | None
    error: str | None


class SearchFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    metadata: Metadata | None = None


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=2000)
    k: int = Field(default=10, ge=1, le=100)
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    filter: SearchFilter | None = None


class SearchHit(BaseModel):
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    ordinal: int
    page: int | None
    text: str
    score: float
    metadata: dict[str, Any]


class SearchOut(BaseModel):
    results: list[SearchHit]
    took_ms: float


class UsageLimits(BaseModel):
    documents: int
    bytes: int
    pending_uploads: int
    requests_per_second: int = Field(description="Per tenant, across every API process; 0: unlimited.")
    upload_size: int
    chunks_per_document: int


class UsageOut(BaseModel):
    documents: int
    bytes: int
    pending_uploads: int
    limits: UsageLimits
