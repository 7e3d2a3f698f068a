"""`/v1/documents`: a tenant's documents, their chunks, cancel, reindex and delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api import progress_stream
from api.auth import AuthenticatedRoute
from api.deps import State, Tenant
from api.proxied_upload import stream_form_to_bucket
from api.queueing import announce, enqueue, queued_answer
from api.schemas import ChunkListOut, ChunkOut, DocumentListOut, DocumentOut, QueuedOut
from shared.db import transaction
from shared.services import documents, proxied_uploads
from shared.services.uploads import Completion

router = APIRouter(prefix="/v1/documents", tags=["documents"], route_class=AuthenticatedRoute)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "metadata": {"type": "string", "description": "A JSON object."},
                        },
                    }
                }
            }
        }
    },
)
async def upload_document(request: Request, tenant: Tenant, state: State) -> QueuedOut:
    """Upload through the API (streamed into the bucket) for clients that cannot reach the bucket."""
    async with state.proxied_uploads:  # bounds this process's memory whatever the number of clients
        streamed = await stream_form_to_bucket(request, state, tenant)

    def finish() -> Completion:
        with transaction(state.pool) as conn:
            return proxied_uploads.finish_proxied_upload(
                conn,
                state.storage,
                state.settings,
                tenant,
                streamed.document.id,
                size=streamed.size,
                metadata=streamed.metadata,
            )

    completion = await run_in_threadpool(finish)
    completion.raise_failure()
    await run_in_threadpool(enqueue, state, completion.tasks)
    return queued_answer(completion.document)


@router.get("/{document_id}")
async def get_document(document_id: uuid.UUID, tenant: Tenant, state: State) -> DocumentOut:
    return DocumentOut.from_row(await documents.read_document(state.reads, tenant, document_id))


@router.get("")
def list_documents(
    tenant: Tenant,
    state: State,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> DocumentListOut:
    with transaction(state.pool) as conn:
        rows, next_cursor = documents.list_documents(conn, tenant, status=status, limit=limit, cursor=cursor)
    return DocumentListOut(items=[DocumentOut.from_row(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{document_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`status` events until a final state"}
    },
)
async def document_progress(
    document_id: uuid.UUID, tenant: Tenant, state: State, request: Request
) -> StreamingResponse:
    """Server-Sent Events: one `status` event (the document JSON) per change; ends after a final state
    (or when the key is revoked). 429 `too_many_streams` past the per-tenant or per-process cap."""
    await documents.read_document(state.reads, tenant, document_id)  # 404 before the stream starts
    stream = state.live.open(tenant, request.state.key_hash, str(document_id))
    return StreamingResponse(
        progress_stream.status_events(state, stream, document_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        # The generator closes the stream; this covers a client gone before it ever started.
        background=BackgroundTask(state.live.close, stream),
    )


@router.get("/{document_id}/chunks")
def list_chunks(
    document_id: uuid.UUID,
    tenant: Tenant,
    state: State,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> ChunkListOut:
    with transaction(state.pool) as conn:
        rows, next_cursor = documents.list_chunks(conn, tenant, document_id, limit=limit, cursor=cursor)
    return ChunkListOut(items=[ChunkOut.from_row(r) for r in rows], next_cursor=next_cursor)


@router.post("/{document_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel_document(document_id: uuid.UUID, tenant: Tenant, state: State) -> DocumentOut:
    with transaction(state.pool) as conn:
        row = documents.cancel_document(conn, state.storage, tenant, document_id)
    announce(state, document_id)
    return DocumentOut.from_row(row)


@router.post("/{document_id}/reindex", status_code=status.HTTP_202_ACCEPTED)
def reindex_document(document_id: uuid.UUID, tenant: Tenant, state: State) -> QueuedOut:
    with transaction(state.pool) as conn:
        completion = documents.reindex_document(conn, state.storage, state.settings, tenant, document_id)
    enqueue(state, completion.tasks)
    return queued_answer(completion.document)


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(document_id: uuid.UUID, tenant: Tenant, state: State) -> Response:
    with transaction(state.pool) as conn:
        documents.delete_document(conn, state.storage, tenant, document_id)
    announce(state, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
