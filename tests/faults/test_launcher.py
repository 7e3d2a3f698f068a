"""`make up` as a user lives with it: stopped and started again, its launcher killed, a folder with
leftovers of an earlier stack. Objects survive, and no start is ever bricked by the one before."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cli.local_stack import read_env_file
from infra.stack import Ports, Stack, leftover_groups
from tests.faults.support import REPO, Figures
from tests.helpers import Bucket, ChuteClient

READY = re.compile(r"Chute is running: (http://127\.0\.0\.1:\d+)")


@dataclass
class Launcher:
    """A `python -m infra.stack up` process and what it printed."""

    process: subprocess.Popen[bytes]
    output: Path
    api_url: str

    def client(self, root: Path) -> ChuteClient:
        return ChuteClient(self.api_url, (root / "dev-api-key").read_text().strip())


def start_up(root: Path, timeout: float = 180) -> Launcher:
    output = root.parent / f"{root.name}-up-{time.monotonic_ns()}.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.stack", "up", "--root", str(root), "--free-ports"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = READY.search(output.read_text(errors="replace"))
        if found:
            return Launcher(process, output, found.group(1))
        if process.poll() is not None:
            raise AssertionError(f"make up exited {process.returncode}:\n{output.read_text()}")
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"make up not ready within {timeout} s:\n{output.read_text()}")


def stop_up(launcher: Launcher) -> None:
    """Ctrl-C, as a user stops it."""
    os.killpg(launcher.process.pid, signal.SIGINT)
    assert launcher.process.wait(120) == 0, launcher.output.read_text()


@contextmanager
def cleanup(root: Path) -> Iterator[None]:
    """Whatever a failed test left on `root`, stopped."""
    try:
        yield
    finally:
        for pgid in leftover_groups(root).values():
            os.killpg(pgid, signal.SIGKILL)


def wait_gone(root: Path, timeout: float) -> float:
    """Seconds until no process of the stack on `root` runs; fails past `timeout`."""
    start = time.monotonic()
    while leftover_groups(root):
        assert time.monotonic() - start < timeout, f"still running: {leftover_groups(root)}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_objects_survive_a_restart_and_reindex_reads_them(tmp_path: Path, figures: Figures) -> None:
    root = tmp_path / "chute"
    data = b"The ferry to the island leaves at dawn and returns before the tide turns.\n" * 20
    with cleanup(root):
        first = start_up(root)
        with first.client(root) as chute:
            document = chute.ingest("ferry.txt", data)
        stop_up(first)

        started = time.monotonic()
        second = start_up(root)
        restarted = time.monotonic() - started
        figures.recovery(restarted, "make up restarted on existing data")
        print(f"\n[faults] make up stopped with Ctrl-C and started again: API up in {restarted:.1f} s")
        try:
            with second.client(root) as chute:
                assert chute.document(document["document_id"])["status"] == "indexed"
                answer = chute.http.post(f"/v1/documents/{document['document_id']}/reindex")
                assert answer.status_code == 202, answer.text
                again = chute.wait(document["document_id"])
                assert again["status"] == "indexed", again
                assert again["chunk_count"] == document["chunk_count"]
                assert (
                    chute.search("when does the ferry leave?", k=1)[0]["document_id"]
                    == (document["document_id"])
                )
            assert Bucket(read_env_file(root / "env")).read(document["object_key"]) == data
        finally:
            stop_up(second)


def test_a_killed_launcher_takes_its_services_with_it(tmp_path: Path, figures: Figures) -> None:
    root = tmp_path / "chute"
    with cleanup(root):
        launcher = start_up(root)
        assert set(leftover_groups(root)) == {"postgres", "redis", "s3", "worker", "reconciler", "api"}

        second = subprocess.run(
            [sys.executable, "-m", "infra.stack", "up", "--root", str(root), "--free-ports"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "Another Chute stack" in second.stderr and str(launcher.process.pid) in second.stderr

        os.killpg(launcher.process.pid, signal.SIGKILL)  # only the launcher: it has a group of its own
        launcher.process.wait()
        gone = wait_gone(root, timeout=90)
        figures.recovery(gone, "services gone after their launcher was SIGKILLed")
        print(f"\n[faults] launcher SIGKILLed: all 6 services gone {gone:.1f} s later")

        again = start_up(root)
        with again.client(root) as chute:
            chute.ingest("after.txt", b"A stack started after a killed one works as before.\n")
        stop_up(again)


def test_a_start_stops_what_an_earlier_stack_left_running(tmp_path: Path) -> None:
    root = tmp_path / "chute"
    with cleanup(root):
        # An earlier stack whose launcher is gone but whose services are not (as after a launcher
        # that could not arm the parent-death signal): Postgres still holds its data folder.
        earlier = Stack(root, Ports.free())
        earlier.start_services()
        earlier.start_api()
        left = dict(earlier.processes)
        earlier.release_root()
        earlier.processes.clear()

        launcher = start_up(root)
        try:
            assert "Stopped api, postgres, redis, s3: an earlier stack" in launcher.output.read_text()
            for process in left.values():
                assert process.wait(5) is not None
            with launcher.client(root) as chute:
                chute.ingest("fresh.txt", b"The next start stopped the leftovers and took over.\n")
        finally:
            stop_up(launcher)
