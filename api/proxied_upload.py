"""The proxied upload: a form's file streamed from the request into the bucket, part by part.

For clients that cannot reach the bucket. Memory stays bounded by one multipart part whatever the
file's size, and nothing is written to local disk (docs/architecture.md#i4). The document row, the
form's metadata and the checks are shared/services/proxied_uploads.py's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.form_stream import FormStream, PartStart
from api.state import AppState
from shared.db import transaction
from shared.errors import AppError, ErrorCode, PayloadTooLarge
from shared.rows import DocumentRow
from shared.services import proxied_uploads
from shared.settings import Settings
from shared.storage import StreamingUpload

MAX_FIELD_BYTES = 64 * 1024
# Parts in one form: 'file' and 'metadata' are all it needs; a few more are tolerated and ignored.
MAX_FIELDS = 8


@dataclass(frozen=True, slots=True)
class StreamedFile:
    document: DocumentRow
    size: int
    metadata: dict[str, Any]


async def stream_form_to_bucket(request: Request, state: AppState, tenant: str) -> StreamedFile:
    form = FormStream(request.headers.get("content-type", ""))
    fields: dict[str, bytearray] = {}
    row: DocumentRow | None = None
    writer: StreamingUpload | None = None
    current: str | None = None
    parts = 0
    try:
        async for data in _bounded_stream(request, state.settings):
            for event in form.feed(data):
                if isinstance(event, PartStart):
                    if event.name == "file" and event.filename is not None:
                        if writer is not None:
                            raise AppError("Send one file per request.", code=ErrorCode.INVALID_FORM)
                        row, writer = await run_in_threadpool(_start_upload, state, tenant, event)
                    current = event.name
                    fields.setdefault(current, bytearray())
                    parts += 1
                    if parts > MAX_FIELDS:
                        raise AppError(
                            f"The form has more than {MAX_FIELDS} fields; send 'file' and 'metadata'.",
                            code=ErrorCode.INVALID_FORM,
                        )
                elif current == "file" and writer is not None:
                    await run_in_threadpool(writer.write, event.data)
                    if writer.size > state.settings.max_upload_size:
                        raise PayloadTooLarge(
                            f"The file is larger than the {state.settings.max_upload_size}-byte limit."
                        )
                elif current is not None:
                    fields[current] += event.data
                    if len(fields[current]) > MAX_FIELD_BYTES:
                        raise AppError(
                            f"The form field '{current}' is too long.", code=ErrorCode.INVALID_FORM
                        )
        form.finish()
        if writer is None or row is None:
            raise AppError("The form has no 'file' part with a filename.", code=ErrorCode.MISSING_FILE)
        if writer.size == 0:
            raise AppError("The file is empty; there is nothing to index.", code=ErrorCode.EMPTY_FILE)
        # Before the object is kept: bad metadata, no upload.
        metadata = proxied_uploads.form_metadata(fields.get("metadata"))
        await run_in_threadpool(writer.finish)
    except BaseException:
        if writer is not None:
            await run_in_threadpool(writer.abort)
        if row is not None:
            await run_in_threadpool(_forget, state, row.id)
        raise
    return StreamedFile(document=row, size=writer.size, metadata=metadata)


async def _bounded_stream(request: Request, settings: Settings) -> AsyncIterator[bytes]:
    """The request body, cut off (408) when the client sends nothing for `proxied_upload_idle_seconds`
    or is not done within `proxied_upload_timeout_seconds`: a slow client cannot hold a slot forever."""
    deadline = time.monotonic() + settings.proxied_upload_timeout_seconds
    chunks = request.stream().__aiter__()
    while True:
        wait = min(settings.proxied_upload_idle_seconds, deadline - time.monotonic())
        try:
            async with asyncio.timeout(max(wait, 0)):
                data = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise AppError(
                "The upload was too slow and was stopped; send the file again on a faster connection.",
                code=ErrorCode.UPLOAD_TIMEOUT,
            ) from None
        yield data


def _start_upload(state: AppState, tenant: str, part: PartStart) -> tuple[DocumentRow, StreamingUpload]:
    with transaction(state.pool) as conn:
        return proxied_uploads.start_proxied_upload(
            conn, state.storage, state.settings, tenant, part.filename or "", part.content_type
        )


def _forget(state: AppState, document_id: uuid.UUID) -> None:
    with transaction(state.pool) as conn:
        proxied_uploads.forget_proxied_upload(conn, document_id)
