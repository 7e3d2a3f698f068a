"""Sending ingestion tasks, always after the transaction that queued their rows has committed, and
announcing the API's own changes to a document to its live streams (on every API process)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.schemas import QueuedOut
from api.state import AppState
from shared.change_notices import publish_change
from shared.rows import DocumentRow
from shared.services.ingest_tasks import IngestTask, send_ingest_tasks


def enqueue(state: AppState, tasks: Sequence[IngestTask]) -> None:
    """Send the tasks a committed unit of work returned, and wake their documents' streams.

    If Redis is down the documents still are safely `queued` in Postgres: the reconciler sends them
    once Redis is back, so the client gets its answer either way.
    """
    send_ingest_tasks(state.celery, tasks)
    for task in tasks:
        announce(state, task.document_id)


def announce(state: AppState, document_id: Any) -> None:
    """Wake the document's live streams: the change is committed (a lost notice only delays them)."""
    publish_change(state.notices, document_id)


def queued_answer(row: DocumentRow) -> QueuedOut:
    """The answer to a completed upload: the row was queued, so it has its task id."""
    assert row.task_id is not None
    return QueuedOut(
        document_id=row.id,
        task_id=row.task_id,
        status=row.status,
        status_url=f"/v1/documents/{row.id}",
        task_url=f"/v1/tasks/{row.task_id}",
    )
