"""`/v1/tasks`: the Celery-style task view clients of the original lesson poll, read from Postgres."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Response, status

from api.auth import AuthenticatedRoute
from api.deps import State, Tenant
from api.queueing import announce
from api.schemas import TaskOut, TaskProgress, TaskResult
from shared.db import transaction
from shared.rows import DocumentStatus
from shared.services import documents

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], route_class=AuthenticatedRoute)

TaskStatus = Literal["PENDING", "STARTED", "PROCESSING", "SUCCESS", "FAILURE", "REVOKED"]

_TASK_STATUS: dict[DocumentStatus, TaskStatus] = {
    DocumentStatus.QUEUED: "PENDING",
    DocumentStatus.PROCESSING: "PROCESSING",
    DocumentStatus.INDEXED: "SUCCESS",
    DocumentStatus.FAILED: "FAILURE",
    DocumentStatus.EXPIRED: "FAILURE",
    DocumentStatus.CANCELLED: "REVOKED",
}


@router.get("/{task_id}")
async def get_task(task_id: uuid.UUID, tenant: Tenant, state: State) -> TaskOut:
    row = await documents.read_task(state.reads, tenant, task_id)
    processing, indexed = row.status == DocumentStatus.PROCESSING, row.status == DocumentStatus.INDEXED
    task_status = _TASK_STATUS.get(row.status, "PENDING")
    if processing and row.step == "downloading" and row.progress == 0:
        task_status = "STARTED"
    return TaskOut(
        task_id=task_id,
        status=task_status,
        progress=TaskProgress(step=row.step, progress=row.progress) if processing else None,
        result=TaskResult(document_id=row.id, chunk_count=row.chunk_count) if indexed else None,
        error=f"{row.error_code}: {row.error_message}" if row.error_code else None,
    )


@router.delete("/{task_id}", status_code=status.HTTP_202_ACCEPTED)
def cancel_task(task_id: uuid.UUID, tenant: Tenant, state: State) -> Response:
    with transaction(state.pool) as conn:
        row = documents.cancel_task(conn, state.storage, tenant, task_id)
    announce(state, row.id)
    return Response(status_code=status.HTTP_202_ACCEPTED)
