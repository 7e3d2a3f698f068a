"""Sending ingestion tasks, always after the transaction that queued the row has committed, and
announcing the API's own changes to a document to its live streams (on every API process)."""

from __future__ import annotations

from typing import Any

import kombu.exceptions
import redis
import structlog

from api.schemas import QueuedOut
from api.state import AppState
from shared.events import publish_change
from shared.queue import send_ingest

log = structlog.get_logger("chute.api")


def enqueue(state: AppState, row: dict[str, Any]) -> None:
    """Send the task for a committed `queued` row.

    If Redis is down the document still is safely `queued` in Postgres: the reconciler sends it
    once Redis is back, so the client gets its answer either way.
    """
    try:
        send_ingest(state.celery, row["id"], row["task_id"])
    except (kombu.exceptions.OperationalError, redis.RedisError) as error:
        log.warning("api.enqueue.deferred", document_id=str(row["id"]), error=str(error))
    announce(state, row["id"])


def announce(state: AppState, document_id: Any) -> None:
    """Wake the document's live streams: the change is committed (a lost notice only delays them)."""
    publish_change(state.notices, document_id)


def queued_answer(row: dict[str, Any]) -> QueuedOut:
    return QueuedOut(
        document_id=row["id"],
        task_id=row["task_id"],
        status=row["status"],
        status_url=f"/v1/documents/{row['id']}",
        task_url=f"/v1/tasks/{row['task_id']}",
    )
