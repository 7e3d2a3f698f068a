"""Uploads: presign a direct upload into the bucket, then verify the object and queue it.

The object key is made here, from the tenant and a new document id; the client's filename is only
sanitised into its last segment. Nothing is queued until the object's size and leading bytes check out.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from shared.db import Connection
from shared.errors import (
    AppError,
    Conflict,
    DocumentFailed,
    ErrorCode,
    PayloadTooLarge,
    UnsupportedType,
    or_not_found,
)
from shared.filetypes import MEDIA_TYPES, file_type_of
from shared.pipeline.chunking import ChunkingSettings
from shared.pipeline.extract import missing_extractor
from shared.pipeline.extractors.ocr import OcrOptions
from shared.pipeline.sniff import check_leading_bytes
from shared.queue import task_id_for
from shared.repositories import documents
from shared.rows import DocumentRow, DocumentStatus
from shared.services import quotas
from shared.services.ingest_tasks import IngestTask
from shared.settings import MiB, Settings
from shared.storage import ObjectInfo, PresignedPost, Storage, StorageRefused

log = structlog.get_logger("chute.uploads")


@dataclass(frozen=True, slots=True)
class UploadRequest:
    filename: str
    size: int | None  # None for a proxied upload, whose size is known once it has streamed through
    content_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    chunking: ChunkingSettings | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class MultipartPlan:
    upload_id: str
    part_size: int
    part_urls: list[str]  # part n is at index n - 1
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    document: DocumentRow
    post: PresignedPost | None = None
    multipart: MultipartPlan | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """What checking and queueing a document came to: its row, the task the caller sends once the
    transaction commits (none when it was queued before, or failed), and the failure, if any, which
    is recorded on the row (so the caller commits it) and answered after the commit."""

    document: DocumentRow
    tasks: list[IngestTask] = field(default_factory=list)
    failure: DocumentFailed | None = None

    @classmethod
    def queued(cls, row: DocumentRow) -> Completion:
        return cls(document=row, tasks=[IngestTask.of(row)])

    def raise_failure(self) -> None:
        """Answer the recorded failure with its code's status (413 `too_large`, 422 ...)."""
        if self.failure is not None:
            raise AppError(self.failure.message, code=self.failure.code)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitise_filename(filename: str, file_type: str) -> str:
    """The last path segment of a client's filename, reduced to safe characters for an object key."""
    name = unicodedata.normalize("NFKD", filename.replace("\\", "/").rsplit("/", 1)[-1])
    name = name.encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip("._")[-120:].lstrip("._")
    return name or f"document.{file_type}"


def resolve_type(settings: Settings, filename: str, content_type: str | None) -> str:
    """The document's type if Chute accepts and can read it; otherwise a 415 saying why."""
    file_type = file_type_of(filename, content_type)
    if file_type is None:
        allowed = ", ".join(settings.allowed_types)
        raise UnsupportedType(f"'{filename}' is not a supported document type. Supported: {allowed}.")
    if file_type not in settings.allowed_types:
        raise UnsupportedType(f"{file_type} documents are not accepted by this Chute (CHUTE_ALLOWED_TYPES).")
    missing = missing_extractor(file_type, OcrOptions.from_settings(settings))
    if missing:
        raise UnsupportedType(missing)
    return file_type


def check_size(settings: Settings, size: int) -> None:
    if size <= 0:
        raise AppError("The file is empty; there is nothing to index.", code=ErrorCode.EMPTY_FILE)
    if size > settings.max_upload_size:
        raise PayloadTooLarge(
            f"The file is {size} bytes; the largest upload accepted is {settings.max_upload_size} bytes."
        )


def create_document(
    conn: Connection, settings: Settings, tenant_id: str, request: UploadRequest, *, upload_ttl: int | None
) -> DocumentRow:
    """Validate an upload request and insert its `awaiting_upload` row with a server-made key."""
    if not request.filename.strip():
        raise AppError("A filename is required.", code=ErrorCode.INVALID_FILENAME)
    if request.size is not None:
        check_size(settings, request.size)
    file_type = resolve_type(settings, request.filename, request.content_type)
    quotas.check_room_for_upload(conn, settings, tenant_id, request.size)
    document_id = uuid.uuid4()
    chunking = request.chunking or ChunkingSettings(
        chunk_size=settings.chunk_size, overlap=settings.chunk_overlap
    )
    return documents.insert_document(
        conn,
        document_id=document_id,
        tenant_id=tenant_id,
        filename=request.filename[:500],
        file_type=file_type,
        content_type=MEDIA_TYPES[file_type],
        size=request.size,
        sha256=request.sha256,
        object_key=f"{tenant_id}/{document_id}/{sanitise_filename(request.filename, file_type)}",
        metadata=request.metadata,
        chunking=chunking.model_dump(),
        upload_expires_at=datetime.now(UTC) + timedelta(seconds=upload_ttl) if upload_ttl else None,
    )


MAX_PARTS = 10_000  # S3's limit


def part_size_for(size: int, preferred: int) -> int:
    """The preferred part size, grown in whole MiB where the file would need more than 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(preferred, -(-needed // MiB) * MiB)


def part_sizes(size: int, part_size: int) -> list[int]:
    """The size of each part of a `size`-byte file cut into `part_size` parts (the last is the rest)."""
    count = -(-size // part_size)
    return [part_size] * (count - 1) + [size - part_size * (count - 1)]


def presign_upload(
    conn: Connection, storage: Storage, settings: Settings, tenant_id: str, request: UploadRequest
) -> PresignedUpload:
    """A presigned POST form for small files; a multipart upload with presigned part URLs for big ones."""
    row = create_document(conn, settings, tenant_id, request, upload_ttl=settings.presign_expires_seconds)
    size = request.size or 0
    if size < settings.multipart_threshold:
        post = storage.presign_post(row.object_key, row.content_type, settings.max_upload_size)
        return PresignedUpload(document=row, post=post)
    part_size = part_size_for(size, settings.multipart_part_size)
    upload_id = storage.start_multipart(row.object_key, row.content_type)
    row = documents.set_upload_id(conn, row.id, upload_id)
    plan = MultipartPlan(
        upload_id=upload_id,
        part_size=part_size,
        part_urls=storage.presign_parts(row.object_key, upload_id, part_sizes(size, part_size)),
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.presign_expires_seconds),
    )
    return PresignedUpload(document=row, multipart=plan)


def complete_upload(
    conn: Connection,
    storage: Storage,
    settings: Settings,
    tenant_id: str,
    document_id: uuid.UUID,
    parts: list[tuple[int, str]] | None = None,
) -> Completion:
    """Assemble a multipart upload if there is one, check the object and queue the document.

    Calling it again changes nothing and answers the same task.
    """
    row = or_not_found(documents.fetch_row(conn, tenant_id, document_id, lock=True), "document")
    if row.status == DocumentStatus.AWAITING_UPLOAD and row.upload_id:
        _assemble_parts(storage, row, row.upload_id, parts)
        row = documents.set_upload_id(conn, row.id, None)
    return verify_and_queue(conn, storage, settings, row)


def _assemble_parts(
    storage: Storage, row: DocumentRow, upload_id: str, parts: list[tuple[int, str]] | None
) -> None:
    if not parts:
        raise AppError(
            "This is a multipart upload: send the parts' numbers and ETags to complete it.",
            code=ErrorCode.PARTS_REQUIRED,
        )
    try:
        storage.complete_multipart(row.object_key, upload_id, parts)
    except StorageRefused as error:
        if error.s3_code == "NoSuchUpload" and storage.head(row.object_key) is not None:
            return  # assembled by an earlier call whose answer was lost
        # The bucket's own words stay in the log; the tenant gets what to do about it.
        log.warning(
            "upload.assemble.refused",
            document_id=str(row.id),
            bucket_code=error.s3_code,
            bucket_message=error.message,
        )
        raise Conflict(
            "The bucket could not assemble the upload; check every part was sent and its ETag is right.",
            code=ErrorCode.UPLOAD_INCOMPLETE,
        ) from error


def check_object(storage: Storage, settings: Settings, row: DocumentRow, *, missing: str) -> ObjectInfo:
    """The document `row`'s object, once it is found fit to index: within the size limit, of the
    declared size, its leading bytes those of the document's type (read pinned to its ETag, so the
    bytes checked are the object's whose ETag is recorded). 409 `upload_not_found`, saying `missing`,
    when there is no object; `DocumentFailed` when it is not fit."""
    info = storage.head(row.object_key)
    if info is None:
        raise Conflict(missing, code=ErrorCode.UPLOAD_NOT_FOUND)
    if info.size > settings.max_upload_size:
        raise DocumentFailed(
            ErrorCode.TOO_LARGE,
            f"The object is {info.size} bytes; the limit is {settings.max_upload_size} bytes.",
        )
    if row.size is not None and info.size != row.size:
        raise DocumentFailed(
            ErrorCode.SIZE_MISMATCH,
            f"The upload declared {row.size} bytes but the object has {info.size} bytes.",
        )
    check_leading_bytes(storage.read_head(row.object_key, info.etag), row.file_type)
    return info


# Completing a document in one of these again answers it as it is (docs/architecture.md#i2).
_QUEUED_BEFORE = (DocumentStatus.QUEUED, DocumentStatus.PROCESSING, DocumentStatus.INDEXED)
_NOT_ARRIVED = "The object has not arrived in the bucket; upload it with the presigned form, then complete."


def verify_and_queue(conn: Connection, storage: Storage, settings: Settings, row: DocumentRow) -> Completion:
    """Check the object of an `awaiting_upload` row and queue it, or record why it cannot be indexed
    (and remove the object). A row queued already answers as it is, with no task to send."""
    if row.status in _QUEUED_BEFORE:
        return Completion(document=row)
    if row.status != DocumentStatus.AWAITING_UPLOAD:
        raise Conflict(f"The document is {row.status}; it cannot be completed.", code=ErrorCode.INVALID_STATE)
    try:
        info = check_object(storage, settings, row, missing=_NOT_ARRIVED)
    except DocumentFailed as failure:
        failed = documents.mark_failed(conn, row.id, failure.code, failure.message) or row
        storage.delete(row.object_key)
        return Completion(document=failed, failure=failure)
    return queue_checked(conn, storage, row, info)


def queue_checked(conn: Connection, storage: Storage, row: DocumentRow, info: ObjectInfo) -> Completion:
    """Queue a document whose object `info` passed `check_object`: its task id is the object's."""
    task_id = task_id_for(storage.bucket, row.object_key, info.etag)
    queued = documents.mark_queued(conn, row.id, size=info.size, etag=info.etag, task_id=task_id)
    return Completion.queued(queued)
