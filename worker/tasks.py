"""Celery tasks. Each parses its arguments and calls one function in `shared`."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from celery import Task

from shared.metrics import DOCUMENTS_PROCESSED, INGEST_RETRIES
from shared.pipeline.ingest import TransientError, ingest_document
from shared.queue import INGEST_TASK, RECONCILE_TASK, send_ingest
from shared.services.reconcile import reconcile
from worker.celery_app import app
from worker.context import open_context


@app.task(
    name=INGEST_TASK,
    bind=True,
    autoretry_for=(TransientError,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=10,
)
def ingest(self: Task, document_id: str) -> dict[str, object]:
    try:
        outcome = ingest_document(open_context(), uuid.UUID(document_id))
    except TransientError:
        INGEST_RETRIES.labels("transient").inc()
        raise
    if outcome.status == "retry":
        INGEST_RETRIES.labels("lease_held").inc()
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    DOCUMENTS_PROCESSED.labels(outcome.status).inc()
    return {"status": outcome.status, "chunk_count": outcome.chunk_count}


@app.task(name=RECONCILE_TASK)
def reconcile_documents() -> dict[str, object]:
    ctx = open_context()
    repairs = reconcile(
        ctx.settings, ctx.pool, ctx.storage, ctx.redis, lambda doc, task: send_ingest(app, doc, task)
    )
    return asdict(repairs)
