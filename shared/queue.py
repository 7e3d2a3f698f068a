"""The Celery configuration both sides share, and sending ingestion tasks by name.

The message is only a wake-up call (docs/architecture.md#i1): it carries a document id, and the
worker reads everything else from the document's row. What waits in the broker is read by
`shared.queue_inspection`.
"""

from __future__ import annotations

import uuid

from celery import Celery

from shared.settings import Settings

INGEST_TASK = "chute.ingest_document"
INGEST_QUEUE = "ingest"

# Task ids are derived from the object's identity, so the same upload always maps to the same id.
_TASK_NAMESPACE = uuid.UUID("6f1c3a52-1f4e-4d8e-9a57-3c2b7f0e9d11")


def task_id_for(bucket: str, key: str, etag: str) -> uuid.UUID:
    return uuid.uuid5(_TASK_NAMESPACE, f"{bucket}/{key}@{etag}")


def make_celery(settings: Settings) -> Celery:
    app = Celery("chute", broker=settings.redis_url)
    app.conf.update(
        task_ignore_result=True,  # Postgres holds every document's state; no result backend.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        # A new worker process loads the embedding model before it reports alive.
        worker_proc_alive_timeout=120,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Tasks are never held for a countdown (no ETA retries), so an idle worker stops at once.
        worker_enable_soft_shutdown_on_idle=False,
        worker_soft_shutdown_timeout=60.0,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_default_queue=INGEST_QUEUE,
        task_routes={INGEST_TASK: {"queue": INGEST_QUEUE}},
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Above the hard time limit, so a running task is never handed to a second worker.
            "visibility_timeout": settings.task_time_limit + 600,
        },
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def send_ingest(app: Celery, document_id: uuid.UUID, task_id: uuid.UUID) -> None:
    app.send_task(INGEST_TASK, args=[str(document_id)], task_id=str(task_id), queue=INGEST_QUEUE)
