"""Leases and retries under real faults: a live worker keeps its document however long a step takes,
and a document released after a transient error is sent again even when its worker dies."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis

from infra.stack import Stack, free_port
from shared.errors import DocumentFailed
from shared.pipeline.extract import extract
from tests.faults.documents import blank_pages_pdf
from tests.faults.support import (
    FAULT_SETTINGS,
    FINAL,
    Figures,
    kill_group,
    new_client,
    pool_children,
    start_worker,
    statuses,
)

LEASE = int(FAULT_SETTINGS["CHUTE_LEASE_SECONDS"])
WORKERS = ("worker", "worker-2")


def unacked(broker: redis.Redis) -> set[str]:
    """Task ids in kombu's `unacked` hash: delivered to a worker, not acknowledged yet."""
    return {json.loads(raw)[0]["headers"]["id"] for raw in broker.hvals("unacked")}


def pages_for(seconds: float, tmp_path: Path) -> int:
    """How many blank PDF pages this machine's extractor needs `seconds` for (measured on 50,000)."""
    sample = tmp_path / "calibrate.pdf"
    sample.write_bytes(blank_pages_pdf(50_000))
    started = time.monotonic()
    with pytest.raises(DocumentFailed):
        extract(sample, "pdf")
    per_page = (time.monotonic() - started) / 50_000
    return min(3_000_000, round(seconds / per_page / 1000) * 1000)


def test_extraction_longer_than_the_lease_is_not_taken_from_a_live_worker(
    fault_stack: Stack, tmp_path: Path
) -> None:
    """A blank PDF whose extraction takes about three leases: the worker is alive and busy throughout,
    so the document must end `no_text` on its first attempt, not be requeued while it is extracted.
    A second worker stands ready to take the document, should the reconciler requeue it."""
    stack = fault_stack
    pages = pages_for(3 * LEASE, tmp_path)
    start_worker(stack, "worker-2")
    with new_client(stack, "lease") as client:
        document_id = client.upload("long-extraction.pdf", blank_pages_pdf(pages))["document_id"]
        history: list[tuple[float, str, int]] = []
        started = time.monotonic()
        taken_back = False
        while time.monotonic() - started < 12 * LEASE:
            row = statuses(stack, [document_id])[document_id]
            if not history or history[-1][1:] != (row["status"], row["attempts"]):
                history.append((round(time.monotonic() - started, 1), row["status"], row["attempts"]))
            if row["status"] in FINAL:
                break
            if (row["attempts"] >= 1 and row["status"] == "queued") or row["attempts"] >= 2:
                # Requeued by the reconciler: is the first attempt's extraction still running?
                extracting = [
                    e for w in WORKERS for c in pool_children(stack.processes[w].pid) for e in c.children()
                ]
                taken_back = True
                history.append(
                    (round(time.monotonic() - started, 1), f"extraction alive: {bool(extracting)}", 0)
                )
                break
            time.sleep(0.1)
        if row["status"] not in FINAL:
            client.http.post(f"/v1/documents/{document_id}/cancel")
            # End the abandoned extractions now rather than in many seconds (the next test needs the worker).
            for child in pool_children(stack.processes["worker"].pid):
                for extraction in child.children():
                    os.kill(extraction.pid, signal.SIGKILL)
        kill_group(stack, "worker-2")

    print(f"\n[faults] {pages:,} blank pages with a {LEASE} s lease: (s, status, attempts) {history}")
    assert not taken_back, (
        f"the reconciler took the document back from a live worker in mid-extraction: {history}. "
        "The lease is renewed only between steps (shared/pipeline/attempt.py `Attempt.report_progress`), and "
        "extraction runs up to CHUTE_EXTRACTION_TIMEOUT_SECONDS (600) against a CHUTE_LEASE_SECONDS of "
        "300 by default"
    )
    assert (row["status"], row["error_code"], row["attempts"]) == ("failed", "no_text", 1), history


def test_document_released_after_a_transient_error_is_sent_again_when_its_worker_dies(
    fault_stack: Stack, figures: Figures
) -> None:
    """A worker that cannot reach the bucket releases the document to `queued` and acks its message:
    no retry waits in its memory for a countdown. Killed then, it takes nothing with it: the
    reconciler sends the document again and a healthy worker indexes it."""
    stack = fault_stack
    kill_group(stack, "worker")
    broken = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the bucket is unreachable
    start_worker(stack, "worker-no-bucket", env={"CHUTE_S3_ENDPOINT_URL": broken})
    broker = redis.Redis.from_url(stack.env["CHUTE_REDIS_URL"])
    try:
        with new_client(stack, "retry") as client:
            answer = client.upload("retried.txt", b"The relief crew reached the lighthouse at dawn.\n")
            document_id, task_id = answer["document_id"], answer["task_id"]
            deadline = time.monotonic() + 90
            while True:
                row = statuses(stack, [document_id])[document_id]
                if row["status"] == "queued" and row["attempts"] >= 1 and task_id not in unacked(broker):
                    break  # released after a failed download, and its message acked
                assert time.monotonic() < deadline, f"the worker never released the document: {row}"
                time.sleep(0.05)
            kill_group(stack, "worker-no-bucket")
            killed_at = time.monotonic()
            figures.add("kills injected", 1)
            start_worker(stack)
            rows = {}
            while time.monotonic() - killed_at < 25:
                rows = statuses(stack, [document_id])
                if rows[document_id]["status"] in FINAL:
                    break
                time.sleep(0.25)
    finally:
        if "worker" not in stack.processes:
            start_worker(stack)
    row = rows[document_id]
    figures.add(
        "documents stuck past their bound (worker died after a release)", int(row["status"] != "indexed")
    )
    print(
        f"\n[faults] released document after its worker died: {row['status']} (attempts {row['attempts']}) "
        f"{time.monotonic() - killed_at:.0f} s later"
    )
    assert row["status"] == "indexed", f"the document stayed {row['status']} for 25 s after its worker died"
