"""A worker stopped with SIGTERM (soft shutdown): the document in flight finishes or goes back to the
queue, nothing is left `processing`, and the rest waits in Redis for the next worker. The reconciler
is stopped for the test, so soft shutdown alone must be enough."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
import redis

from infra.stack import Stack
from shared.queue_inspection import tasks_in_broker
from tests.faults.documents import text_document
from tests.faults.support import Figures, duplicate_chunks, new_client, query, start_worker, wait_final


@pytest.mark.parametrize("whom", ["main process", "process group"])
def test_sigterm_lets_the_running_document_finish_and_leaves_the_rest_queued(
    fault_stack: Stack, figures: Figures, whom: str
) -> None:
    """`main process` is how `docker stop` and `kill PID` stop a worker; `process group` is systemd's
    default (KillMode=control-group) and Ctrl-C: the prefork child gets the signal too."""
    stack = fault_stack
    rng = random.Random(21)
    stack.stop("reconciler")
    try:
        with new_client(stack, "term") as client:
            # About 280 chunks: embedding takes a few seconds, so SIGTERM lands in the middle.
            long_id = client.upload("long.txt", text_document(rng, 250))["document_id"]
            short_ids = [
                client.upload(f"short-{i}.txt", text_document(rng, 2))["document_id"] for i in range(4)
            ]
            ids = [long_id, *short_ids]
            deadline = time.monotonic() + 60
            while not query(stack, "SELECT 1 FROM documents WHERE id = %s AND step = 'embedding'", long_id):
                assert time.monotonic() < deadline, "the long document never reached embedding"
                time.sleep(0.02)
            time.sleep(0.5)

            worker = stack.processes.pop("worker")
            stopped_at = time.monotonic()
            if whom == "main process":
                os.kill(worker.pid, signal.SIGTERM)
            else:
                os.killpg(worker.pid, signal.SIGTERM)
            at_signal = query(stack, "SELECT status, step FROM documents WHERE id = %s", long_id)[0]
            worker.wait(90)
            exit_seconds = time.monotonic() - stopped_at

            at_exit = {
                row["id"]: row
                for row in query(
                    stack, "SELECT id::text, status, attempts FROM documents WHERE id = ANY(%s::uuid[])", ids
                )
            }
            broker = redis.Redis.from_url(stack.env["CHUTE_REDIS_URL"])
            in_broker = tasks_in_broker(broker, delivered_within=3600)
            task_ids = {
                row["id"]: row["task_id"]
                for row in query(
                    stack, "SELECT id::text, task_id::text FROM documents WHERE id = ANY(%s::uuid[])", ids
                )
            }
            print(
                f"\n[faults] SIGTERM to the worker's {whom}: it exited with {worker.returncode} after "
                f"{exit_seconds:.1f} s; long document {at_exit[long_id]['status']}, short ones "
                f"{[at_exit[i]['status'] for i in short_ids]}"
            )

            assert at_signal["status"] == "processing", at_signal  # SIGTERM found it in flight
            assert not [i for i, row in at_exit.items() if row["status"] == "processing"], at_exit
            assert at_exit[long_id]["status"] in ("indexed", "queued")
            for document_id, row in at_exit.items():
                if row["status"] == "queued":  # back in (or still in) Redis, for the next worker
                    assert task_ids[document_id] in in_broker, (document_id, row)

            start_worker(stack)
            rows = wait_final(stack, ids, timeout=60)
    finally:
        stack.start_reconciler()

    assert {row["status"] for row in rows.values()} == {"indexed"}, rows
    assert not duplicate_chunks(stack, ids)
    figures.add("documents lost", sum(1 for row in rows.values() if row["status"] != "indexed"))
