"""`/v1/events/s3`: bucket notifications (MinIO webhook, AWS via a relay), token-authenticated."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header

from api.deps import State
from api.queueing import enqueue
from shared.db import transaction
from shared.errors import Unauthorized
from shared.services import bucket_notifications

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post("/s3")
def s3_notification(
    state: State,
    notification: Annotated[dict[str, Any], Body()],
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, int]:
    """Each `ObjectCreated` record for an upload awaiting its object is handled like `complete`."""
    token = state.settings.events_token
    expected = f"Bearer {token.get_secret_value()}" if token else None
    if expected is None or not hmac.compare_digest((authorization or "").encode(), expected.encode()):
        raise Unauthorized("Send the events token as 'Authorization: Bearer <token>'.")
    queued = 0
    for key in bucket_notifications.object_created_keys(notification, state.storage.bucket):
        with transaction(state.pool) as conn:
            tasks = bucket_notifications.handle_object_created(conn, state.storage, state.settings, key)
        enqueue(state, tasks)
        queued += len(tasks)
    return {"queued": queued}
