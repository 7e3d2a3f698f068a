"""At-least-once delivery: the same task delivered again, or twice at once, never doubles a document."""

from __future__ import annotations

import uuid

import psycopg

from infra.stack import Stack
from shared.queue import make_celery, send_ingest
from shared.settings import Settings
from tests.helpers import ChuteClient

TEXT = "\n\n".join(
    f"Clause {i}: the tenant shall keep the premises in good repair." for i in range(60)
).encode()


def chunk_rows(stack: Stack, document_id: str) -> list[tuple[int, str]]:
    with psycopg.connect(stack.database_url) as conn:
        return conn.execute(
            "SELECT ordinal, text FROM chunks WHERE document_id = %s ORDER BY ordinal", (document_id,)
        ).fetchall()


def test_redelivered_and_duplicate_tasks_leave_the_same_chunks(client: ChuteClient, stack: Stack) -> None:
    document = client.ingest("lease.txt", TEXT)
    before = chunk_rows(stack, document["document_id"])
    assert len(before) == document["chunk_count"]
    celery = make_celery(Settings(redis_url=stack.env["CHUTE_REDIS_URL"]))
    document_id, task_id = uuid.UUID(document["document_id"]), uuid.UUID(document["task_id"])

    # Delivered again after it finished: nothing to do.
    send_ingest(celery, document_id, task_id)
    # As if the worker died after writing but before acking: the row is queued again and the same
    # message arrives twice at once.
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("UPDATE documents SET status = 'queued' WHERE id = %s", (document_id,))
    send_ingest(celery, document_id, task_id)
    send_ingest(celery, document_id, task_id)

    after = client.wait(document["document_id"])
    assert after["status"] == "indexed"
    assert chunk_rows(stack, document["document_id"]) == before
    assert after["chunk_count"] == document["chunk_count"]
    celery.close()
