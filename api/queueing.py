"""Sending ingestion tasks, always after the transaction that queued the row has committed."""

from __future__ import annotations

from typing import Any

from api.schemas import QueuedOut
from api.state import AppState
from shared.queue import send_ingest


def enqueue(state: AppState, row: dict[str, Any]) -> None:
    # If this fails (Redis down), the row stays `queued` and the reconciler sends it again.
    send_ingest(state.celery, row["id"], row["task_id"])


def queued_answer(row: dict[str, Any]) -> QueuedOut:
    return QueuedOut(
        document_id=row["id"],
        task_id=row["task_id"],
        status=row["status"],
        status_url=f"/v1/documents/{row['id']}",
        task_url=f"/v1/tasks/{row['task_id']}",
    )
