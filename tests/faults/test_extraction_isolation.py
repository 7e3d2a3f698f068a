"""The extraction child, seen from outside on a real stack: while it converts a .doc, /proc shows it holds
none of the worker's secrets or sockets; at its deadline LibreOffice dies with it; when the extraction
process itself is killed, the document fails with a code, and the same worker takes the next one.

LibreOffice is stood in for by a program named `soffice`, first on the stack's PATH, that records its
pid and its parent's (the document's child) and then hangs, as a conversion stuck on a hostile file would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from infra.stack import Stack
from tests.documents import legacy_office
from tests.faults.support import FAULT_SETTINGS, new_client, running_stack
from tests.helpers import ChuteClient
from tests.unit.sample_documents import report_docx

DEADLINE_SECONDS = 8
SECRET_SETTINGS = (
    "CHUTE_DATABASE_URL",
    "CHUTE_REDIS_URL",
    "CHUTE_S3_SECRET_ACCESS_KEY",
    "CHUTE_OPENAI_API_KEY",
)


@dataclass
class Probe:
    stack: Stack
    client: ChuteClient
    started: Path  # the stand-in writes "its pid, its parent's pid" here
    doc: bytes


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    root = tmp_path_factory.mktemp("extraction")
    folder = root / "fake-bin"
    folder.mkdir()
    started = root / "soffice.started"
    stand_in = folder / "soffice"
    stand_in.write_text(f'#!/bin/sh\necho "$$ $PPID" > {started}\nexec sleep 600\n')
    stand_in.chmod(0o755)
    doc = legacy_office([report_docx(root / "report.docx")], root)["doc"].read_bytes()  # the real one
    settings = {
        **FAULT_SETTINGS,
        "CHUTE_LEASE_SECONDS": "60",
        "CHUTE_EXTRACTION_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        "CHUTE_OPENAI_API_KEY": "sk-provider-secret",
        "PATH": f"{folder}:{os.environ['PATH']}",
    }
    with running_stack(root / "stack", settings) as stack, new_client(stack, "extraction") as client:
        yield Probe(stack, client, started, doc)


def converting(probe: Probe) -> tuple[str, int, int]:
    """Upload the .doc and wait until the stand-in runs: the document id, its pid, the child's pid."""
    probe.started.unlink(missing_ok=True)
    document_id = probe.client.upload("report.doc", probe.doc)["document_id"]
    deadline = time.monotonic() + 60
    while not probe.started.exists() or not probe.started.read_text().strip():
        assert time.monotonic() < deadline, "the conversion never started"
        time.sleep(0.05)
    program, child = map(int, probe.started.read_text().split())
    return document_id, program, child


def gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def assert_worker_takes_the_next(probe: Probe, worker_pid: int, marker: str) -> None:
    assert (
        probe.stack.processes["worker"].pid == worker_pid and probe.stack.processes["worker"].poll() is None
    )
    document = probe.client.ingest(f"{marker}.txt", f"The {marker} keeper logged every ship.".encode())
    assert document["chunk_count"] == 1


def test_the_child_holds_no_secret_or_socket_and_its_program_dies_at_the_deadline(probe: Probe) -> None:
    worker_pid = probe.stack.processes["worker"].pid
    document_id, program, child = converting(probe)

    environment = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{child}/environ").read_text().split("\0") if entry
    )
    links = [os.readlink(f"/proc/{child}/fd/{fd}") for fd in os.listdir(f"/proc/{child}/fd")]
    lineage = [process.pid for process in psutil.Process(child).parents()]
    assert worker_pid in lineage, "the stand-in was not run by this stack's worker"
    assert not set(SECRET_SETTINGS) & set(environment), sorted(environment)
    assert probe.stack.env["CHUTE_S3_SECRET_ACCESS_KEY"] not in "\n".join(environment.values())
    assert environment["PATH"].startswith(str(probe.started.parent / "fake-bin"))
    assert not [link for link in links if link.startswith("socket:")], links

    document = probe.client.wait(document_id, timeout=DEADLINE_SECONDS + 30)

    assert (document["status"], document["error"]["code"]) == ("failed", "timeout"), document
    assert f"took longer than {DEADLINE_SECONDS} s" in document["error"]["message"]
    assert gone(program), "LibreOffice outlived the document's child"
    assert gone(child)
    assert_worker_takes_the_next(probe, worker_pid, "lighthouse")


def test_a_killed_extraction_process_fails_the_document_and_is_replaced(probe: Probe) -> None:
    worker_pid = probe.stack.processes["worker"].pid
    document_id, program, child = converting(probe)
    extraction_process = psutil.Process(child).parent()
    assert extraction_process is not None

    extraction_process.send_signal(signal.SIGKILL)
    document = probe.client.wait(document_id, timeout=30)

    assert (document["status"], document["error"]["code"]) == ("failed", "internal_error"), document
    assert "the extraction process ended unexpectedly" in document["error"]["message"]
    assert gone(program) and gone(child), "the document's child outlived the extraction process"
    assert_worker_takes_the_next(probe, worker_pid, "harbour")
