"""Ingestion tasks to send once the transaction that queued their documents has committed.

The one shape of "send these after commit": a service that queues documents returns `IngestTask`s,
and whoever commits (an API route, the reconciler) passes them to `send_ingest_tasks` afterwards, so
a worker never wakes for a row that is not there yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import kombu.exceptions
import redis
import structlog
from celery import Celery

from shared.queue import send_ingest
from shared.rows import DocumentRow

log = structlog.get_logger("chute.queue")


@dataclass(frozen=True, slots=True)
class IngestTask:
    document_id: uuid.UUID
    task_id: uuid.UUID

    @classmethod
    def of(cls, row: DocumentRow) -> IngestTask:
        """The task of a `queued` document row (queuing gave it its task id)."""
        assert row.task_id is not None
        return cls(document_id=row.id, task_id=row.task_id)


def send_ingest_tasks(celery: Celery, tasks: Iterable[IngestTask]) -> None:
    """Send each task by name. A task the broker does not take now is not lost: its document is
    `queued` in Postgres, and the reconciler sends it again once Redis is back."""
    for task in tasks:
        try:
            send_ingest(celery, task.document_id, task.task_id)
        except (kombu.exceptions.OperationalError, redis.RedisError) as error:
            log.warning("enqueue.deferred", document_id=str(task.document_id), error=str(error))
