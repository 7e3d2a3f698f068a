"""`/v1/uploads`: presigned direct uploads into the bucket, and their completion."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from api.auth import AuthenticatedRoute
from api.deps import State, Tenant
from api.queueing import enqueue, queued_answer
from api.schemas import (
    BatchIn,
    BatchOut,
    CompleteIn,
    ErrorOut,
    MultipartOut,
    PartUrl,
    PresignedPostOut,
    QueuedOut,
    RejectedOut,
    UploadIn,
    UploadOut,
)
from shared.db import transaction
from shared.errors import AppError
from shared.services import uploads
from shared.services.uploads import PresignedUpload

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], route_class=AuthenticatedRoute)


def _answer(presigned: PresignedUpload) -> UploadOut:
    row = presigned.document
    upload: PresignedPostOut | MultipartOut
    if presigned.post is not None:
        post = presigned.post
        upload = PresignedPostOut(url=post.url, fields=post.fields, expires_at=post.expires_at)
    else:
        plan = presigned.multipart
        assert plan is not None
        upload = MultipartOut(
            upload_id=plan.upload_id,
            part_size=plan.part_size,
            parts=[PartUrl(part_number=n, url=url) for n, url in enumerate(plan.part_urls, start=1)],
            expires_at=plan.expires_at,
        )
    return UploadOut(
        document_id=row.id,
        object_key=row.object_key,
        status=row.status,
        upload=upload,
        complete_url=f"/v1/uploads/{row.id}/complete",
        status_url=f"/v1/documents/{row.id}",
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_upload(body: UploadIn, tenant: Tenant, state: State) -> UploadOut:
    with transaction(state.pool) as conn:
        presigned = uploads.presign_upload(conn, state.storage, state.settings, tenant, body.to_request())
    return _answer(presigned)


@router.post("/batch")
def create_uploads(body: BatchIn, tenant: Tenant, state: State) -> BatchOut:
    answers: list[UploadOut | RejectedOut] = []
    with transaction(state.pool) as conn:
        for file in body.files:
            try:
                presigned = uploads.presign_upload(
                    conn, state.storage, state.settings, tenant, file.to_request()
                )
            except AppError as error:  # validation happens before any write, so nothing to undo
                answers.append(
                    RejectedOut(
                        filename=file.filename, error=ErrorOut(code=error.code, message=error.message)
                    )
                )
                continue
            answers.append(_answer(presigned))
    return BatchOut(batch_size=len(answers), uploads=answers)


@router.post("/{document_id}/complete", status_code=status.HTTP_202_ACCEPTED)
def complete_upload(
    document_id: uuid.UUID, tenant: Tenant, state: State, body: CompleteIn | None = None
) -> QueuedOut:
    parts = body.part_etags() if body else None
    with transaction(state.pool) as conn:
        completion = uploads.complete_upload(conn, state.storage, state.settings, tenant, document_id, parts)
    completion.raise_failure()
    enqueue(state, completion.tasks)
    return queued_answer(completion.document)
