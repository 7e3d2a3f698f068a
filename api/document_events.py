"""Server-Sent Events for one document: a `status` event (the document JSON) per change.

Workers publish a notice on Redis when they change a row; this stream re-reads the row from
Postgres on each notice, and at least every second, so a lost notice or a reconnect still shows the
current state. The stream ends after a final state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import redis.asyncio

from api.schemas import DocumentOut
from api.state import AppState
from shared.events import channel_for
from shared.repositories import documents

FINAL = {"indexed", "failed", "cancelled", "expired"}
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


async def _read(state: AppState, tenant: str, document_id: uuid.UUID) -> DocumentOut | None:
    row = await documents.read_document(state.reads, tenant, document_id)
    return DocumentOut.from_row(row) if row else None


def _event(document: DocumentOut) -> str:
    event_id = int(document.updated_at.timestamp() * 1000)
    return f"id: {event_id}\nevent: status\ndata: {document.model_dump_json()}\n\n"


async def document_events(
    state: AppState, client: redis.asyncio.Redis, tenant: str, document_id: uuid.UUID
) -> AsyncIterator[str]:
    pubsub = client.pubsub()
    # Subscribe before the first read, so no change can slip between the two.
    await pubsub.subscribe(channel_for(document_id))
    try:
        yield "retry: 2000\n\n"
        shown: tuple[object, ...] | None = None
        quiet_since = time.monotonic()
        while True:
            document = await _read(state, tenant, document_id)
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
            if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_SECONDS)
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
