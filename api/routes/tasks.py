"""`/v1/tasks`: the Celery-style task view clients of the original lesson poll, read from Postgres."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Response, status

from api.auth import AuthenticatedRoute
from api.deps import State, Tenant
from api.queueing import announce
from api.schemas import TaskOut, TaskProgress, TaskResult
from shared.db import transaction
from shared.errors import NotFound
from shared.repositories import documents as document_rows
from shared.services import documents

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=AuthenticatedRoute)

TaskStatus = Literal["PENDING", "STARTED", "PROCESSING", "SUCCESS", "FAILURE", "REVOKED"]

_TASK_STATUS: dict[str, TaskStatus] = {
    "queued": "PENDING",
    "processing": "PROCESSING",
    "indexed": "SUCCESS",
    "failed": "FAILURE",
    "expired": "FAILURE",
    "cancelled": "REVOKED",
}


def _found(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise NotFound("No such task.")
    return row


@router.get("/{task_id}")
async def get_task(task_id: uuid.UUID, tenant: Tenant, state: State) -> TaskOut:
    row = _found(await document_rows.read_document_by_task(state.reads, tenant, task_id))
    processing, indexed = row["status"] == "processing", row["status"] == "indexed"
    task_status = _TASK_STATUS.get(row["status"], "PENDING")
    if processing and row["step"] == "downloading" and row["progress"] == 0:
        task_status = "STARTED"
    return TaskOut(
        task_id=task_id,
        status=task_status,
        progress=TaskProgress(step=row["step"], progress=row["progress"]) if processing else None,
        result=TaskResult(document_id=row["id"], chunk_count=row["chunk_count"]) if indexed else None,
        error=f"{row['error_code']}: {row['error_message']}" if row["error_code"] else None,
    )


@router.delete("/{task_id}", status_code=status.HTTP_202_ACCEPTED)
def cancel_task(task_id: uuid.UUID, tenant: Tenant, state: State) -> Response:
    with transaction(state.pool) as conn:
        row = _found(document_rows.get_document_by_task(conn, tenant, task_id))
        documents.cancel_document(conn, state.storage, tenant, row["id"])
    announce(state, row["id"])
    return Response(status_code=status.HTTP_202_ACCEPTED)
