"""Redis and Postgres restarted under a running pipeline: no document is lost once the reconciler ran,
and the API and the worker recover without being restarted themselves."""

from __future__ import annotations

import random
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from infra.stack import Stack
from tests.faults.documents import text_document
from tests.faults.support import (
    Figures,
    chunk_texts,
    duplicate_chunks,
    new_client,
    query,
    repairs,
    wait_final,
)
from tests.helpers import ChuteClient

SETTLE_SECONDS = 90  # every document must be indexed this long after the service is back


def upload_batch(client: ChuteClient, rng: random.Random, count: int, name: str) -> dict[str, bytes]:
    documents = {}
    for index in range(count):
        data = text_document(rng, rng.choice((2, 4, 8)))
        documents[client.upload(f"{name}-{index}.txt", data)["document_id"]] = data
    return documents


def wait_processing(stack: Stack, ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(stack, "SELECT 1 FROM documents WHERE id = ANY(%s::uuid[]) AND status = 'processing'", ids):
            return
        time.sleep(0.02)
    raise AssertionError("no document started processing")


def assert_all_indexed_once(
    stack: Stack, documents: dict[str, bytes], rows: dict[str, dict[str, Any]], figures: Figures
) -> None:
    lost = [i for i in documents if rows.get(i, {}).get("status") != "indexed"]
    duplicates = duplicate_chunks(stack, documents)
    mismatched = [
        i for i in documents if i not in lost and len(chunk_texts(stack, i)) != rows[i]["chunk_count"]
    ]
    figures.add("documents lost", len(lost))
    figures.add("documents duplicated", len(duplicates) + len(mismatched))
    assert not lost, {i: rows.get(i) for i in lost}
    assert not duplicates
    assert not mismatched


@pytest.mark.parametrize("persistent", [True, False], ids=["redis-aof", "redis-no-persistence"])
def test_redis_restart_mid_run_loses_no_document(
    fault_stack: Stack, figures: Figures, persistent: bool
) -> None:
    stack = fault_stack
    rng = random.Random(11 if persistent else 12)
    worker_pid = stack.processes["worker"].pid
    with new_client(stack, "redis") as client:
        documents = upload_batch(client, rng, 6, "before")
        wait_processing(stack, list(documents))

        # With persistence: a clean restart (SIGTERM, the AOF is written). Without: a crash, and the
        # queue, the unacked messages and the reconciler's lock are gone with it.
        stack.stop("redis", signal.SIGTERM if persistent else signal.SIGKILL)
        down_at = time.monotonic()
        # Completed while Redis is down: queued in Postgres, the message cannot be sent.
        during = upload_batch(client, rng, 2, "during")
        documents |= during
        ready = client.http.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("down"), ready.text
        time.sleep(max(0.0, 3 - (time.monotonic() - down_at)))
        stack.start_redis(persistent=persistent)
        back_at = time.monotonic()
        documents |= upload_batch(client, rng, 2, "after")

        rows = wait_final(stack, documents, timeout=SETTLE_SECONDS)
        recovered = time.monotonic() - back_at

    print(
        f"\n[faults] Redis {'AOF' if persistent else 'without persistence'}: down {back_at - down_at:.1f} s, "
        f"{len(documents)} documents indexed {recovered:.1f} s after it came back; attempts "
        f"{sorted(row['attempts'] for row in rows.values())}"
    )
    figures.recovery(recovered, f"Redis restart ({'AOF' if persistent else 'no persistence'})")
    assert_all_indexed_once(stack, documents, rows, figures)
    # Their messages were never sent: the reconciler found them queued and absent from Redis.
    assert set(during) <= repairs(stack).get("resent_lost", set()), repairs(stack)
    assert stack.processes["worker"].poll() is None and stack.processes["worker"].pid == worker_pid
    assert recovered < SETTLE_SECONDS


def test_postgres_restart_ready_answers_503_and_everything_recovers(
    fault_stack: Stack, figures: Figures
) -> None:
    stack = fault_stack
    rng = random.Random(13)
    worker_pid, api_pid = stack.processes["worker"].pid, stack.processes["api"].pid
    with new_client(stack, "pg") as client:
        documents = upload_batch(client, rng, 6, "before")
        wait_processing(stack, list(documents))

        stack.stop("postgres", signal.SIGINT)  # fast shutdown: sessions are cut, the server exits
        down_at = time.monotonic()
        ready = client.http.get("/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["error"] == "unavailable"
        assert ready.json()["checks"]["postgres"].startswith("down"), ready.json()
        assert "postgres" in ready.json()["detail"]
        assert ready.json()["checks"]["redis"] == "ok"
        # A status read made during the outage answers 503, not 500.
        status = client.http.get(f"/v1/documents/{next(iter(documents))}")
        assert status.status_code == 503 and status.json()["error"] == "unavailable", status.text

        # A request made during the outage waits for the pool (or answers 503), never 500.
        answers: list[httpx.Response] = []
        waiting = threading.Thread(target=lambda: answers.append(client.presign("during.txt", 100)))
        waiting.start()
        time.sleep(3)
        stack.start_postgres()
        back_at = time.monotonic()
        waiting.join(60)

        deadline = time.monotonic() + 30
        while (ready := client.http.get("/ready")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.status_code == 200, ready.text
        ready_after = time.monotonic() - back_at
        # The API's status reads come from connections made before the restart: the dead ones are
        # replaced, and no client sees an error for them.
        statuses = [client.http.get(f"/v1/documents/{document_id}").status_code for document_id in documents]
        assert statuses == [200] * len(documents), statuses
        documents |= upload_batch(client, rng, 3, "after")
        rows = wait_final(stack, documents, timeout=SETTLE_SECONDS)
        recovered = time.monotonic() - back_at

    print(
        f"\n[faults] Postgres down {back_at - down_at:.1f} s; /ready 200 again {ready_after:.1f} s after it "
        f"came back; request made during the outage: {answers[0].status_code if answers else 'no answer'}; "
        f"{len(documents)} documents indexed {recovered:.1f} s after; attempts "
        f"{sorted(row['attempts'] for row in rows.values())}"
    )
    figures.recovery(recovered, "Postgres restart")
    assert answers and answers[0].status_code in (201, 503), answers
    assert_all_indexed_once(stack, documents, rows, figures)
    # Neither the API nor the worker was restarted.
    assert stack.processes["worker"].poll() is None and stack.processes["worker"].pid == worker_pid
    assert stack.processes["api"].poll() is None and stack.processes["api"].pid == api_pid
