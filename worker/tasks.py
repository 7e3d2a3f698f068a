"""Celery tasks. Each parses its arguments and calls one function in `shared`."""

from __future__ import annotations

import uuid

from celery import Task
from structlog.contextvars import bound_contextvars

from shared.metrics import DOCUMENTS_PROCESSED, INGEST_RETRIES
from shared.pipeline.ingest import process_next_document
from shared.queue import INGEST_TASK
from worker.celery_app import app
from worker.context import open_context

# Outcomes that leave the document for a later attempt, with the reason they count as a retry.
_RETRY_REASONS = {"released": "transient", "held": "lease_held"}


@app.task(name=INGEST_TASK, bind=True)
def ingest_document(self: Task, document_id: str) -> dict[str, object]:
    """Never retried by Celery: a released document is `queued` in Postgres and the reconciler
    sends it again, so no message waits in a worker's memory for a countdown (and dies with it).

    Every log line of the task carries its `task_id` and `document_id` (the claimed document's, once
    one is claimed); both are unbound when the task ends."""
    with bound_contextvars(task_id=self.request.id, document_id=document_id):
        outcome = process_next_document(open_context(), uuid.UUID(document_id))
    if outcome.status in _RETRY_REASONS:
        INGEST_RETRIES.labels(_RETRY_REASONS[outcome.status]).inc()
    else:
        DOCUMENTS_PROCESSED.labels(outcome.status).inc()
    return {"status": outcome.status, "chunk_count": outcome.chunk_count}
