"""The proxied upload: a form's file streamed from the request into the bucket, part by part.

For clients that cannot reach the bucket. Memory stays bounded by one multipart part whatever the
file's size, and nothing is written to local disk (DESIGN.md invariant 4).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.form_stream import FormStream, PartStart
from api.state import AppState
from shared.db import transaction
from shared.errors import AppError, PayloadTooLarge
from shared.input_rules import check_metadata, check_name
from shared.repositories import documents
from shared.services import uploads
from shared.settings import Settings
from shared.storage import StreamingUpload

MAX_FIELD_BYTES = 64 * 1024
# Parts in one form: 'file' and 'metadata' are all it needs; a few more are tolerated and ignored.
MAX_FIELDS = 8

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamedFile:
    document: dict[str, Any]
    size: int
    metadata: dict[str, Any]


async def stream_form_to_bucket(request: Request, state: AppState, tenant: str) -> StreamedFile:
    form = FormStream(request.headers.get("content-type", ""))
    fields: dict[str, bytearray] = {}
    row: dict[str, Any] | None = None
    writer: StreamingUpload | None = None
    current: str | None = None
    parts = 0
    try:
        async for data in _bounded_stream(request, state.settings):
            for event in form.feed(data):
                if isinstance(event, PartStart):
                    if event.name == "file" and event.filename is not None:
                        if writer is not None:
                            raise AppError("Send one file per request.", code="invalid_form", status=400)
                        row, writer = await run_in_threadpool(_start_upload, state, tenant, event)
                    current = event.name
                    fields.setdefault(current, bytearray())
                    parts += 1
                    if parts > MAX_FIELDS:
                        raise AppError(
                            f"The form has more than {MAX_FIELDS} fields; send 'file' and 'metadata'.",
                            code="invalid_form",
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
                        raise AppError(f"The form field '{current}' is too long.", code="invalid_form")
        form.finish()
        if writer is None or row is None:
            raise AppError("The form has no 'file' part with a filename.", code="missing_file", status=400)
        if writer.size == 0:
            raise AppError("The file is empty; there is nothing to index.", code="empty_file", status=400)
        metadata = _metadata(fields.get("metadata"))  # before the object is kept: bad metadata, no upload
        await run_in_threadpool(writer.finish)
    except BaseException:
        if writer is not None:
            await run_in_threadpool(writer.abort)
        if row is not None:
            await run_in_threadpool(_forget, state, row["id"])
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
                code="upload_timeout",
                status=408,
            ) from None
        yield data


def _start_upload(state: AppState, tenant: str, part: PartStart) -> tuple[dict[str, Any], StreamingUpload]:
    """The document row and the multipart upload its bytes stream into, recorded together.

    The row expires when the upload's deadline passes, and carries the multipart upload's id: if this
    process dies mid-stream, the reconciler marks the row `expired` and aborts the upload.
    """
    filename = _checked("filename", check_name, part.filename or "")
    request = uploads.UploadRequest(filename=filename, size=None, content_type=part.content_type)
    ttl = state.settings.proxied_upload_timeout_seconds
    with transaction(state.pool) as conn:
        row = uploads.create_document(conn, state.settings, tenant, request, upload_ttl=ttl)
        writer = StreamingUpload(state.storage, row["object_key"], row["content_type"])
        return documents.set_upload_id(conn, row["id"], writer.upload_id), writer


def _forget(state: AppState, document_id: Any) -> None:
    with transaction(state.pool) as conn:
        documents.delete_document(conn, document_id)


def _metadata(raw: bytearray | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise AppError(
            "The 'metadata' field must be a JSON object.", code="validation_error", status=422
        ) from error
    if not isinstance(value, dict):
        raise AppError("The 'metadata' field must be a JSON object.", code="validation_error", status=422)
    return _checked("metadata", check_metadata, value)


def _checked(name: str, check: Callable[[T], T], value: T) -> T:
    """`check(value)`, its ValueError answered as the 422 a JSON body would get."""
    try:
        return check(value)
    except ValueError as error:
        raise AppError(f"{name}: {error}", code="validation_error", status=422) from error
