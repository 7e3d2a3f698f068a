"""The reconciler and bucket events repair what the queue lost; nothing is left waiting forever."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool

from infra.stack import Stack
from shared.pipeline.ingest import process_next_document
from shared.pipeline.worker_context import WorkerContext
from shared.settings import Settings
from shared.storage import Storage
from tests.conftest import EVENTS_TOKEN
from tests.helpers import ChuteClient

TEXT = b"Recovery drills: the night shift restarted the pumps after the storm surge.\n"
# What `complete` records of the object: S3's ETag of a single-part upload is its MD5. A document is
# queued or processing only with it, and the worker reads the object only under it (If-Match).
TEXT_ETAG = hashlib.md5(TEXT, usedforsecurity=False).hexdigest()


def sql(stack: Stack, statement: str, *params: Any) -> None:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def uploaded(client: ChuteClient, name: str) -> dict[str, Any]:
    """A document whose object is in the bucket, but no complete call was made."""
    presigned = client.presign(name, len(TEXT)).json()
    assert client.post_to_bucket(presigned["upload"], TEXT).status_code in (200, 201, 204)
    return dict(presigned)


def recovered(client: ChuteClient, stack: Stack, name: str, row: str, *params: Any) -> dict[str, Any]:
    """Upload `name` without completing it, set its row as `row` says (SQL assignments, behind Chute's
    back), and wait for the final state the reconciler leads it to."""
    presigned = uploaded(client, name)
    sql(stack, f"UPDATE documents SET {row} WHERE id = %s", *params, presigned["document_id"])
    return client.wait(presigned["document_id"], timeout=60)


def notification(key: str, event: str = "ObjectCreated:Post") -> dict[str, Any]:
    from urllib.parse import quote_plus

    return {
        "Records": [
            {"eventName": event, "s3": {"bucket": {"name": "chute"}, "object": {"key": quote_plus(key)}}}
        ]
    }


def test_object_that_arrived_without_complete_is_picked_up(client: ChuteClient) -> None:
    presigned = uploaded(client, "no complete call.txt")

    document = client.wait(presigned["document_id"], timeout=60)

    assert document["status"] == "indexed"
    assert document["attempts"] == 1


def test_s3_event_completes_the_upload_once(client: ChuteClient, anonymous: httpx.Client) -> None:
    presigned = uploaded(client, "event driven.txt")
    body = notification(presigned["object_key"])
    headers = {"Authorization": f"Bearer {EVENTS_TOKEN}"}

    first = anonymous.post("/v1/events/s3", json=body, headers=headers)
    duplicate = anonymous.post("/v1/events/s3", json=body, headers=headers)
    unknown = anonymous.post("/v1/events/s3", json=notification("nobody/nothing/x.txt"), headers=headers)
    removed = anonymous.post(
        "/v1/events/s3", json=notification(presigned["object_key"], "ObjectRemoved:Delete"), headers=headers
    )

    assert first.json() == {"queued": 1}
    assert duplicate.json() == {"queued": 0}
    assert unknown.json() == {"queued": 0}
    assert removed.json() == {"queued": 0}
    document = client.wait(presigned["document_id"])
    assert document["status"] == "indexed"
    assert document["attempts"] == 1


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token"])
def test_s3_events_need_the_token(anonymous: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = anonymous.post("/v1/events/s3", json=notification("a/b/c.txt"), headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"


def test_upload_never_completed_expires(client: ChuteClient, stack: Stack) -> None:
    presigned = client.presign("abandoned.txt", 10).json()
    # Time passes: the presigned URL runs out.
    sql(
        stack,
        "UPDATE documents SET upload_expires_at = now() - interval '1 second' WHERE id = %s",
        presigned["document_id"],
    )

    document = client.wait(presigned["document_id"], timeout=60)

    assert document["status"] == "expired"
    assert document["error"]["code"] == "upload_expired"


def test_processing_document_whose_worker_died_is_queued_again(client: ChuteClient, stack: Stack) -> None:
    # As if a worker claimed it and its host vanished: processing, lease long gone, no message.
    orphan = "status = 'processing', step = 'embedding', attempts = 1, etag = %s,"
    orphan += " task_id = gen_random_uuid(), lease_expires_at = now() - interval '1 minute'"

    document = recovered(client, stack, "orphan.txt", orphan, TEXT_ETAG)

    assert document["status"] == "indexed"
    assert document["attempts"] == 2


def test_queued_document_whose_message_was_lost_is_sent_again(client: ChuteClient, stack: Stack) -> None:
    lost = "status = 'queued', queued_at = now() - interval '1 hour', etag = %s, task_id = gen_random_uuid()"

    document = recovered(client, stack, "lost message.txt", lost, TEXT_ETAG)

    assert document["status"] == "indexed"
    assert document["attempts"] == 1


def test_recovery_past_the_attempt_limit_fails_the_document(client: ChuteClient, stack: Stack) -> None:
    cursed = "status = 'processing', attempts = 3, task_id = gen_random_uuid(),"
    cursed += " lease_expires_at = now() - interval '1 minute'"

    document = recovered(client, stack, "cursed.txt", cursed)

    assert document["status"] == "failed"
    assert document["error"]["code"] == "too_many_attempts"
    assert "3 times" in document["error"]["message"]


def test_a_waiting_upload_is_left_alone_until_its_object_arrives(client: ChuteClient) -> None:
    presigned = client.presign("patient.txt", len(TEXT)).json()
    time.sleep(6)  # several reconciler runs
    assert client.document(presigned["document_id"])["status"] == "awaiting_upload"


def test_a_worker_pool_that_hands_out_no_connection_is_replaced(stack: Stack) -> None:
    settings = Settings(database_url=stack.database_url, redis_url=stack.env["CHUTE_REDIS_URL"])
    stuck: ConnectionPool = ConnectionPool(
        stack.database_url, min_size=0, max_size=1, timeout=0.5, open=False
    )
    stuck.open()
    held = stuck.getconn()  # its only connection, never given back: no delivery can get one
    ctx = WorkerContext(
        settings=settings,
        pool=stuck,
        storage=Storage(settings),
        redis=redis.Redis.from_url(settings.redis_url),
    )
    try:
        first = process_next_document(ctx, uuid.uuid4())
        second = process_next_document(ctx, uuid.uuid4())
    finally:
        stuck.putconn(held)
        stuck.close()
        ctx.pool.close()

    assert first.status == "released"
    assert ctx.pool is not stuck
    assert second.status == "skipped"  # no such document: the new pool reached the database
