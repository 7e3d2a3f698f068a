"""The isolated child: its progress reports reach the caller and extend the deadline; it sees none of
the worker's secrets or sockets; its programs die with it; what it sends back is data, checked."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import psutil
import pytest

from shared.errors import DocumentFailed
from shared.pipeline import isolation
from shared.pipeline.elements import Element, elements_from_data
from shared.pipeline.environment import LIBRARY_ENVIRONMENT
from shared.pipeline.isolation import run_isolated
from tests.unit import isolation_probes as probes

# The bounds most probes run under (a test that needs others passes them).
isolated = partial(run_isolated, memory_limit=2**28, timeout=30, what="Reading")


def test_reports_from_the_child_reach_the_caller_in_order() -> None:
    seen: list[tuple[int, int]] = []

    result = isolated(probes.pages, 3, 0.0, progress=lambda d, t: seen.append((d, t)))

    assert result == "read"
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_the_deadline_grows_with_the_pages_the_child_announces() -> None:
    # 4 pages of 0.5 s: longer than the 1 s base timeout, shorter than 1 s + 4 x 1 s.
    result = isolated(probes.pages, 4, 0.5, timeout=1, progress=lambda d, t: None, seconds_per_unit=1)
    assert result == "read"


def test_without_time_per_page_the_base_deadline_stops_the_child() -> None:
    with pytest.raises(DocumentFailed) as caught:
        isolated(probes.pages, 4, 0.5, timeout=1, progress=lambda d, t: None)
    assert caught.value.code == "timeout"
    assert "Reading took longer than 1 s" in caught.value.message


# --- What the child can reach, and what reaches the worker back ---------------------------------

SECRETS = {
    "CHUTE_DATABASE_URL": "postgresql://chute:db-secret@127.0.0.1:5432/chute",
    "CHUTE_REDIS_URL": "redis://:redis-secret@127.0.0.1:6379/0",
    "CHUTE_S3_SECRET_ACCESS_KEY": "s3-secret",
    "CHUTE_OPENAI_API_KEY": "sk-provider-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
}


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """The extraction process is started by the test (after it set up the worker's state), and
    stopped after it, so the next test starts one without that state."""
    isolation.stop()
    yield
    isolation.stop()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _gone(pid)


def test_the_child_sees_none_of_the_workers_secrets(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)

    seen = isolated(probes.environment)

    assert not set(SECRETS) & set(seen), seen
    assert not [value for value in seen.values() if "secret" in value], seen
    assert seen["PATH"] == os.environ["PATH"]  # what extraction needs stays: pandoc, soffice, sleep


def test_the_child_runs_with_telemetry_and_hub_downloads_off(
    fresh_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in LIBRARY_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)

    seen = run_isolated(probes.environment, memory_limit=2**28, timeout=30, what="Reading")

    assert {name: seen.get(name) for name in LIBRARY_ENVIRONMENT} == LIBRARY_ENVIRONMENT


def test_the_child_holds_none_of_the_workers_sockets(fresh_process: None) -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as listening,
        socket.create_connection(listening.getsockname()),
    ):
        assert probes.sockets(), "the test process holds sockets"
        seen = isolated(probes.sockets)
    assert seen == []


def test_a_program_the_child_started_dies_with_it_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "program.pid"

    with pytest.raises(DocumentFailed) as caught:
        isolated(probes.start_program_and_hang, str(pid_file), timeout=2)

    assert caught.value.code == "timeout"
    assert _wait_gone(int(pid_file.read_text())), "the child's program outlived it"


def test_a_pickle_in_place_of_the_reply_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"

    with pytest.raises(DocumentFailed):
        isolated(probes.reply_with_a_pickle, str(marker))

    assert not marker.exists(), "the reply was unpickled"
    assert isolated(probes.returns, "next") == "next"


def test_a_reply_that_is_not_elements_is_a_malformed_reply() -> None:
    hostile = [{"text": "fine", "type": "Title", "page": None, "origin": None}, {"text": 5}]

    with pytest.raises(DocumentFailed) as caught:
        isolated(probes.returns, hostile, decode=elements_from_data)

    assert (caught.value.code, caught.value.message) == ("internal_error", "Reading sent a malformed reply.")


def test_elements_travel_as_data() -> None:
    sent = [Element("A pickle: cos\nsystem\n(S'touch x'\ntR.", "Title", 3, "ocr"), Element("Body")]
    data = [element.to_data() for element in sent]

    received = isolated(probes.returns, data, decode=elements_from_data)

    assert received == sent


def test_an_oversized_reply_is_too_large() -> None:
    with pytest.raises(DocumentFailed) as caught:
        isolated(probes.text, 2**21, max_reply=2**20)
    assert caught.value.code == "too_large"
    assert "more than 1 MiB of data" in caught.value.message


def test_a_child_past_its_memory_limit_is_too_large() -> None:
    with pytest.raises(DocumentFailed) as caught:
        isolated(probes.allocates, 512)
    assert caught.value.code == "too_large"
    assert isolated(probes.allocates, 64) == 64 * 2**20


def test_when_the_extraction_process_dies_the_document_fails_and_the_next_runs(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"

    with pytest.raises(DocumentFailed) as caught:
        isolated(probes.kill_the_extraction_process, str(pid_file), timeout=30)

    assert caught.value.code == "internal_error"
    assert "the extraction process ended unexpectedly" in caught.value.message
    assert _wait_gone(int(pid_file.read_text())), "the document's child outlived the extraction process"
    assert isolated(probes.returns, "next") == "next"


def test_when_the_worker_dies_the_childs_program_dies_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "program.pid"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from shared.pipeline.isolation import run_isolated\n"
            "from tests.unit import isolation_probes as probes\n"
            f"run_isolated(probes.start_program_and_hang, {str(pid_file)!r}, memory_limit=2**28,"
            " timeout=600, what='Reading')",
        ]
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and worker.poll() is None, "the program never started"
        time.sleep(0.05)

    worker.kill()
    worker.wait()

    assert _wait_gone(int(pid_file.read_text())), "the program outlived the worker"
