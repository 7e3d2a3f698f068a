"""The S3 server down under a running stack: the API answers 503 `storage_unavailable` (never 500) and
changes nothing, `/ready` names the bucket, a worker that cannot download hands the document back, and
everything is indexed once, after the server is back. Also: an object replaced after `complete` is
never indexed unchecked."""

from __future__ import annotations

import random
import signal
import time

import httpx

from infra.stack import Stack
from tests.faults.documents import text_document
from tests.faults.support import (
    Figures,
    duplicate_chunks,
    kill_group,
    new_client,
    query,
    start_worker,
    wait_final,
)
from tests.helpers import Bucket

MiB = 1024 * 1024


def storage_down(answer: httpx.Response, what: str) -> None:
    assert answer.status_code == 503, (what, answer.status_code, answer.text)
    assert answer.json()["error"] == "storage_unavailable", (what, answer.text)


def crash_s3(stack: Stack) -> None:
    stack.stop("s3", signal.SIGKILL)


def test_the_api_answers_503_naming_the_storage_and_loses_nothing(
    fault_stack: Stack, figures: Figures
) -> None:
    stack = fault_stack
    rng = random.Random(31)
    kept, late = text_document(rng, 3), text_document(rng, 2)
    with new_client(stack, "s3api") as client:
        indexed = client.ingest("kept.txt", kept)
        waiting = client.presign("late.txt", len(late)).json()

        crash_s3(stack)
        try:
            storage_down(client.presign("big.pdf", 70 * MiB), "presign a multipart upload")
            storage_down(client.complete(waiting["document_id"]), "complete")
            storage_down(client.http.post(f"/v1/documents/{indexed['document_id']}/reindex"), "reindex")
            storage_down(client.http.delete(f"/v1/documents/{indexed['document_id']}"), "delete")
            ready = client.http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["bucket"].startswith("down"), ready.json()
            assert client.document(indexed["document_id"])["status"] == "indexed"
            assert client.document(waiting["document_id"])["status"] == "awaiting_upload"
        finally:
            restarted = time.monotonic()
            stack.start_s3()
        back = time.monotonic()

        while client.http.get("/ready").status_code != 200:
            time.sleep(0.1)
        ready_after = time.monotonic() - back
        figures.recovery(ready_after, "API ready after the S3 server came back")
        print(
            f"\n[faults] S3 down: presign (multipart), complete, reindex, delete answered 503; "
            f"S3 answering {back - restarted:.1f} s after its start, /ready 200 {ready_after:.1f} s later"
        )
        assert client.post_to_bucket(waiting["upload"], late).status_code == 204
        assert client.complete(waiting["document_id"]).status_code == 202
        assert client.wait(waiting["document_id"])["status"] == "indexed"
        assert client.http.post(f"/v1/documents/{indexed['document_id']}/reindex").status_code == 202
        assert client.wait(indexed["document_id"])["status"] == "indexed"
        assert client.http.delete(f"/v1/documents/{indexed['document_id']}").status_code == 204
        assert indexed["object_key"] not in Bucket(stack.env).object_keys()


def test_a_worker_that_cannot_download_hands_back_and_indexes_once_s3_is_back(
    fault_stack: Stack, figures: Figures
) -> None:
    stack = fault_stack
    rng = random.Random(32)
    kill_group(stack, "worker")  # so every document is still queued when the server goes
    try:
        with new_client(stack, "s3worker") as client:
            ids = [client.upload(f"doc-{n}.txt", text_document(rng, 4))["document_id"] for n in range(3)]
            crash_s3(stack)
            try:
                start_worker(stack)
                # Handed back: claimed once (an attempt counted), then queued again.
                not_yet = (
                    "SELECT 1 FROM documents WHERE id = ANY(%s::uuid[])"
                    " AND (attempts = 0 OR status <> 'queued')"
                )
                deadline = time.monotonic() + 120
                while query(stack, not_yet, ids):
                    assert time.monotonic() < deadline, "the worker did not hand the documents back"
                    time.sleep(0.2)
            finally:
                stack.start_s3()
            back = time.monotonic()
            rows = wait_final(stack, ids, timeout=120)
            indexed_after = time.monotonic() - back
            figures.recovery(indexed_after, "handed-back documents indexed after S3 returned")
            attempts = sorted(row["attempts"] for row in rows.values())
            print(
                f"\n[faults] S3 down under the worker's download: {len(ids)} documents handed back, "
                f"indexed {indexed_after:.1f} s after the server was started; attempts {attempts}"
            )
    finally:
        if "worker" not in stack.processes:
            start_worker(stack)
    assert {row["status"] for row in rows.values()} == {"indexed"}, rows
    assert not duplicate_chunks(stack, ids)


def test_an_object_replaced_after_complete_is_never_indexed(fault_stack: Stack) -> None:
    stack = fault_stack
    kill_group(stack, "worker")
    try:
        with new_client(stack, "s3swap") as client:
            original = b"The verified words about the lighthouse and its keeper.\n"
            completed = client.upload("swap.txt", original)
            document_id = completed["document_id"]
            key = client.document(document_id)["object_key"]
            Bucket(stack.env).put(key, b"Words nobody checked, put there after complete.\n")
            start_worker(stack)
            row = wait_final(stack, [document_id], timeout=120)[document_id]
            assert (row["status"], row["error_code"]) == ("failed", "object_changed"), row
            assert not query(stack, "SELECT 1 FROM chunks WHERE document_id = %s", document_id)
    finally:
        if "worker" not in stack.processes:
            start_worker(stack)
