"""The Celery configuration both sides share, and sending ingestion tasks by name.

The message is only a wake-up call (DESIGN.md invariant 1): it carries a document id, and the
worker reads everything else from the document's row.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis
from celery import Celery

from shared.settings import Settings

INGEST_TASK = "chute.ingest_document"
RECONCILE_TASK = "chute.reconcile"
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
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_enable_soft_shutdown_on_idle=True,
        worker_soft_shutdown_timeout=60.0,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_default_queue=INGEST_QUEUE,
        task_routes={INGEST_TASK: {"queue": INGEST_QUEUE}, RECONCILE_TASK: {"queue": INGEST_QUEUE}},
        beat_schedule={
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": settings.reconcile_interval_seconds,
                "options": {"expires": settings.reconcile_interval_seconds},
            }
        },
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


_PRIORITY_QUEUES = [INGEST_QUEUE, *(f"{INGEST_QUEUE}\x06\x16{step}" for step in (3, 6, 9))]


def queue_depth(client: redis.Redis) -> int:
    """Messages waiting in the ingestion queue (not counting those delivered to workers)."""
    return sum(int(client.llen(queue)) for queue in _PRIORITY_QUEUES)


def tasks_in_broker(client: redis.Redis) -> set[str]:
    """Ids of the ingestion tasks Redis holds: waiting in the queue or delivered and not yet acked.

    Reads kombu's Redis layout: the queue's lists (one per priority step) and the `unacked` hash.
    """
    ids: set[str] = set()
    for queue in _PRIORITY_QUEUES:
        for raw in client.lrange(queue, 0, -1):
            ids.add(_task_id(json.loads(raw)))
    for raw in client.hvals("unacked"):
        ids.add(_task_id(json.loads(raw)[0]))
    ids.discard("")
    return ids


def _task_id(message: dict[str, Any]) -> str:
    return str(message.get("headers", {}).get("id", ""))
