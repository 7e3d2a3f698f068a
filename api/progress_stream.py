"""A document's progress stream (`GET /v1/documents/{id}/events`, Server-Sent Events): a `status`
event (the document JSON) per change.

The stream waits on the process's live hub (api/live.py) for a change notice, then re-reads the row
from Postgres; with no notice it re-reads only every RECHECK_SECONDS, in case one was lost. It ends
after a final state, when the document is deleted, or at once when the caller's key is revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

from api.live import Stream
from api.schemas import DocumentOut
from api.state import AppState
from shared.rows import DocumentStatus
from shared.services import documents

FINAL = {DocumentStatus.INDEXED, DocumentStatus.FAILED, DocumentStatus.CANCELLED, DocumentStatus.EXPIRED}
RECHECK_SECONDS = 15.0
KEEPALIVE_SECONDS = 15.0


async def _read(state: AppState, tenant: str, document_id: uuid.UUID) -> DocumentOut | None:
    row = await documents.find_document(state.reads, tenant, document_id)
    return DocumentOut.from_row(row) if row else None


def _event(document: DocumentOut) -> str:
    event_id = int(document.updated_at.timestamp() * 1000)
    return f"id: {event_id}\nevent: status\ndata: {document.model_dump_json()}\n\n"


async def status_events(state: AppState, stream: Stream, document_id: uuid.UUID) -> AsyncIterator[str]:
    """The stream's events; `stream` is registered with the hub already and is closed here."""
    try:
        yield "retry: 2000\n\n"
        shown: tuple[object, ...] | None = None
        quiet_since = time.monotonic()
        while not stream.revoked:
            # Cleared before the read, so a notice arriving during it is not lost.
            stream.changed.clear()
            document = await _read(state, stream.tenant, document_id)
            if document is None:
                yield "event: deleted\ndata: {}\n\n"
                return
            current = (document.status, document.step, document.progress, document.updated_at)
            if current != shown:
                shown = current
                quiet_since = time.monotonic()
                yield _event(document)
            if document.status in FINAL:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(RECHECK_SECONDS, KEEPALIVE_SECONDS)):
                    await stream.changed.wait()
            if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
        yield 'event: revoked\ndata: {"error": "unauthorized"}\n\n'
    finally:
        state.live.close(stream)
