"""Hostile input, generated here: each file ends `failed` with a specific code (or `indexed` where that is
right) within a stated time, extraction stays inside its child's memory cap, and the same worker process
goes on to index a normal document afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.stack import Stack
from tests.faults.documents import (
    SHORT_PARAGRAPH,
    blank_pages_pdf,
    corrupt_tiff,
    deeply_nested_html,
    pixel_bomb_png,
    text_pdf,
    zip_bomb_docx,
)
from tests.faults.support import FAULT_SETTINGS, Figures, MemorySampler, MiB, new_client, running_stack
from tests.helpers import ChuteClient

# Extraction here takes seconds; the lease must outlast the longest step (see test_sigkill's lease test).
HOSTILE_SETTINGS = {**FAULT_SETTINGS, "CHUTE_LEASE_SECONDS": "60", "CHUTE_MAX_ATTEMPTS": "3"}
# Invalid UTF-8: cp1252 bytes (é is 0xE9), which the text decoder falls back to.
LATIN1 = "Caf\xe9 cr\xe8me for the na\xefve r\xe9sum\xe9 of the d\xe9cor.\n".encode("cp1252")
# Each document must reach its final state this long after its upload was completed.
BOUND_SECONDS = 60.0
# The extraction child may grow by CHUTE_EXTRACTION_MEMORY_LIMIT (2 GiB by default) over its parent.
EXTRACTION_CAP_MIB = 2048
# Outside the extraction child, nothing may come near the cap: the worker's own processes stay small.
WORKER_BOUND_MIB = 1536


@dataclass
class HostileStack:
    stack: Stack
    client: ChuteClient
    sampler: MemorySampler
    worker_pid: int


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, figures: Figures) -> Iterator[HostileStack]:
    with running_stack(tmp_path_factory.mktemp("hostile"), HOSTILE_SETTINGS) as stack:
        pid = stack.processes["worker"].pid
        with new_client(stack, "hostile") as client, MemorySampler(pid) as sampler:
            yield HostileStack(stack, client, sampler, pid)
        memory = sampler.summary()
        print(f"\n[faults] peak worker memory on the hostile set: {memory}")
        figures.values["peak worker memory on the hostile set"] = memory


def upload_multipart(client: ChuteClient, filename: str, data: bytes) -> dict[str, Any]:
    presigned = client.presign(filename, len(data))
    assert presigned.status_code == 201, presigned.text
    answer = presigned.json()
    upload = answer["upload"]
    assert upload["method"] == "MULTIPART"
    size = upload["part_size"]
    parts = []
    for part in upload["parts"]:
        start = (part["part_number"] - 1) * size
        stored = client.bucket_http.put(part["url"], content=data[start : start + size])
        assert stored.status_code == 200, stored.text
        parts.append({"part_number": part["part_number"], "etag": stored.headers["ETag"]})
    completed = client.http.post(f"/v1/uploads/{answer['document_id']}/complete", json={"parts": parts})
    assert completed.status_code == 202, completed.text
    return dict(completed.json())


def send(client: ChuteClient, filename: str, data: bytes) -> tuple[str, float]:
    """Upload (multipart when big), complete; the document id and when it was queued."""
    if len(data) >= 64 * MiB:
        answer = upload_multipart(client, filename, data)
    else:
        answer = client.upload(filename, data)
    return answer["document_id"], time.monotonic()


def outcome(hostile: HostileStack, filename: str, data: bytes) -> tuple[dict[str, Any], float]:
    document_id, queued = send(hostile.client, filename, data)
    document = hostile.client.wait(document_id, timeout=BOUND_SECONDS + 30)
    return document, time.monotonic() - queued


def assert_worker_survived(hostile: HostileStack, marker: str) -> None:
    """The same worker process (never restarted) indexes a normal document afterwards."""
    assert hostile.stack.processes["worker"].poll() is None, "the worker process died"
    assert hostile.stack.processes["worker"].pid == hostile.worker_pid
    document = hostile.client.ingest(
        f"{marker}.txt", f"After the storm the {marker} keeper lit the lamp.".encode()
    )
    assert document["chunk_count"] == 1


def test_hostile_documents_end_with_specific_codes_in_bounded_time(
    hostile: HostileStack, tmp_path: Path
) -> None:
    client = hostile.client
    cut = text_pdf("The tide tables for the northern harbour.")
    bomb = zip_bomb_docx(tmp_path / "bomb.docx", 5 * 1024**3).read_bytes()
    cases: list[tuple[str, bytes, str, str | None, str | None]] = [
        # filename, bytes, final status, error code, a phrase the indexed text must hold
        ("truncated.pdf", cut[: len(cut) // 2], "failed", "corrupt", None),
        ("blank-50000-pages.pdf", blank_pages_pdf(50_000), "failed", "no_text", None),
        ("bomb.docx", bomb, "failed", "too_large", None),
        ("whitespace.txt", b" \t \n\r\n   \n\t\t\n" * 4000, "failed", "no_text", None),
        ("latin1.txt", LATIN1 * 20, "indexed", None, "Café crème for the naïve résumé"),
        ("deep.html", deeply_nested_html(100_000, "The deepest paragraph mentions a lighthouse keeper."),
         "indexed", None, "The deepest paragraph mentions a lighthouse keeper."),
        ("one-line-100MiB.txt", b"word " * (100 * MiB // 5), "failed", "too_large", None),
        ("10000x10000.png", pixel_bomb_png(10_000), "failed", "too_large", None),
        ("corrupt.tiff", corrupt_tiff(), "failed", "corrupt", None),
    ]  # fmt: skip
    timings = {}
    for filename, data, status, code, phrase in cases:
        document, elapsed = outcome(hostile, filename, data)
        timings[filename] = round(elapsed, 1)
        print(
            f"[faults] {filename} ({len(data):,} bytes): {document['status']} {document['error']} "
            f"in {elapsed:.1f} s, attempts {document['attempts']}"
        )
        assert (document["status"], (document["error"] or {}).get("code")) == (status, code), (
            filename,
            document,
        )
        assert elapsed < BOUND_SECONDS, f"{filename} took {elapsed:.1f} s"
        assert document["attempts"] == 1, (filename, document)
        if phrase is not None:
            chunks = client.http.get(f"/v1/documents/{document['document_id']}/chunks").json()["items"]
            assert phrase in " ".join(chunk["text"] for chunk in chunks), (filename, chunks)

    # Renamed files are refused when the upload completes, before any worker parses them.
    disguised = [
        ("binary.txt", bytes(range(256)) * 64),
        ("report.docx", text_pdf("A PDF that claims to be a Word document.")),
    ]
    for filename, data in disguised:
        presigned = client.presign(filename, len(data)).json()
        assert client.post_to_bucket(presigned["upload"], data, filename).status_code in (200, 201, 204)
        completed = client.complete(presigned["document_id"])
        assert completed.status_code == 422, completed.text
        assert completed.json()["error"] == "type_mismatch"
        document = client.document(presigned["document_id"])
        assert document["status"] == "failed" and document["error"]["code"] == "type_mismatch", document

    print(f"[faults] hostile set timings (s): {timings}")
    assert_worker_survived(hostile, "harbour")
    memory = hostile.sampler.summary()
    assert (
        memory.get("extraction child peak VmHWM MiB", 0)
        < memory["pool child peak VmHWM MiB"] + EXTRACTION_CAP_MIB
    )
    assert memory["pool child peak VmHWM MiB"] < WORKER_BOUND_MIB, memory
    assert memory["main peak VmHWM MiB"] < WORKER_BOUND_MIB, memory


def test_zip_bomb_under_the_expansion_check_is_stopped_by_the_memory_cap(
    hostile: HostileStack, tmp_path: Path
) -> None:
    """0.9 GiB of one-letter paragraphs passes the 1 GiB expansion check; parsing it needs more than the
    extraction child's cap, so the cap must stop the child and the document fail `too_large`."""
    bomb = zip_bomb_docx(tmp_path / "paragraphs.docx", 900 * MiB, unit=SHORT_PARAGRAPH).read_bytes()

    document, elapsed = outcome(hostile, "paragraphs.docx", bomb)

    print(
        f"[faults] paragraphs.docx ({len(bomb):,} bytes, 0.9 GiB expanded): {document['status']} "
        f"{document['error']} in {elapsed:.1f} s"
    )
    memory = hostile.sampler.summary()
    assert memory["pool child peak VmHWM MiB"] < WORKER_BOUND_MIB, memory
    assert_worker_survived(hostile, "ferry")
    assert elapsed < BOUND_SECONDS
    assert document["status"] == "failed"
    assert document["error"]["code"] == "too_large", document["error"]
