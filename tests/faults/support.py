"""Tools the fault tests share: their own stacks, worker process trees, SQL, waiting, memory sampling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg.rows import dict_row

from infra.stack import Ports, Stack
from tests.helpers import ChuteClient

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

# Short lease and a reconciler every second, so a dead worker's document is found within seconds.
# The tests inject the failures themselves, so the attempt limit is lifted out of their way (the
# limit has its own test in tests/integration/test_recovery.py).
FAULT_SETTINGS = {
    "CHUTE_LEASE_SECONDS": "5",
    "CHUTE_RECONCILE_INTERVAL_SECONDS": "1",
    "CHUTE_QUEUED_GRACE_SECONDS": "3",
    "CHUTE_UPLOAD_GRACE_SECONDS": "3",
    "CHUTE_MAX_ATTEMPTS": "100",
    "CHUTE_TASK_SOFT_TIME_LIMIT": "120",
    "CHUTE_TASK_TIME_LIMIT": "150",
    "CHUTE_WORKER_CONCURRENCY": "1",  # the faults below kill or watch the one worker process
}

FINAL = ("indexed", "failed", "cancelled", "expired")
SERVICES = frozenset({"postgres", "redis", "s3", "api", "reconciler"})


# -- stacks --------------------------------------------------------------------------------------


@contextmanager
def running_stack(
    root: Path, settings: dict[str, str], *, worker: bool = True, **options: Any
) -> Iterator[Stack]:
    """A whole stack of its own (services, a worker, the reconciler, API), stopped whatever happens."""
    stack = Stack(root, Ports.free(), extra_env=settings, **options)
    try:
        stack.start_services()
        if worker:
            start_worker(stack)
        stack.start_reconciler()
        stack.start_api()
        yield stack
    finally:
        # Workers first, and without their 60 s soft shutdown: nothing here needs them to stop gently.
        # Then clients before servers, whatever order restarts left `processes` in, and Postgres with a
        # fast shutdown (SIGTERM waits for every client to leave).
        for name in [name for name in stack.processes if name not in SERVICES]:
            stack.stop(name, signal.SIGKILL)
        for name in ("api", "reconciler", "s3", "redis"):
            stack.stop(name)
        stack.stop("postgres", signal.SIGINT)
        stack.stop_all()
        print(f"\n[faults] stack logs: {root / 'logs'}")


def start_worker(
    stack: Stack, name: str = "worker", *, timeout: float = 120, **options: Any
) -> subprocess.Popen[bytes]:
    """Start a worker and wait for Celery's `ready.` line in its log."""
    log = stack.root / "logs" / f"{name}.log"
    offset = log.stat().st_size if log.exists() else 0
    process = stack.start_worker(name, **options)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker {name} exited with {process.returncode}; see {log}")
        with log.open("rb") as file:
            file.seek(offset)
            if b" ready." in file.read():
                return process
        time.sleep(0.1)
    raise TimeoutError(f"worker {name} not ready within {timeout} s; see {log}")


def kill_group(stack: Stack, name: str) -> None:
    """SIGKILL a service's whole process group at once: its host died."""
    process = stack.processes.pop(name)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def pool_children(main_pid: int) -> list[psutil.Process]:
    """The Celery prefork children of a worker's main process (the processes that run tasks)."""
    try:
        return list(psutil.Process(main_pid).children())
    except psutil.NoSuchProcess:
        return []


# -- clients and SQL -----------------------------------------------------------------------------


def new_client(stack: Stack, prefix: str = "f") -> ChuteClient:
    """A client of a fresh tenant, so each test sees only its own documents."""
    key = stack.create_key(f"{prefix}-{uuid.uuid4().hex[:10]}")
    return ChuteClient(f"http://127.0.0.1:{stack.ports.api}", key)


def query(stack: Stack, statement: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(
        stack.database_url, autocommit=True, connect_timeout=5, row_factory=dict_row
    ) as conn:
        return conn.execute(statement, params).fetchall()


def statuses(stack: Stack, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = query(
        stack,
        "SELECT id::text AS id, status, step, attempts, chunk_count, error_code, indexed_at"
        " FROM documents WHERE id = ANY(%s::uuid[])",
        list(ids),
    )
    return {row["id"]: row for row in rows}


def wait_final(stack: Stack, ids: Iterable[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait until every document is in a final state; returns their rows (also on timeout)."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        rows = statuses(stack, ids)
        if all(rows.get(i, {}).get("status") in FINAL for i in ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def duplicate_chunks(stack: Stack, ids: Iterable[str]) -> list[dict[str, Any]]:
    return query(
        stack,
        "SELECT document_id::text, ordinal, count(*) AS n FROM chunks WHERE document_id = ANY(%s::uuid[])"
        " GROUP BY document_id, ordinal HAVING count(*) > 1",
        list(ids),
    )


def chunk_texts(stack: Stack, document_id: str) -> list[str]:
    rows = query(stack, "SELECT text FROM chunks WHERE document_id = %s ORDER BY ordinal", document_id)
    return [row["text"] for row in rows]


def repairs(stack: Stack) -> dict[str, set[str]]:
    """Document ids the reconciler repaired, by kind (`resent_lost`, `requeued_stale`, ...), from the
    `reconcile.repaired` lines in the stack's logs (the reconciler's, `worker/reconciler.py`)."""
    found: dict[str, set[str]] = {}
    for log in (stack.root / "logs").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"reconcile.repaired"' in line:
                for kind, ids in json.loads(line).items():
                    if isinstance(ids, list):
                        found.setdefault(kind, set()).update(ids)
    return found


# -- memory --------------------------------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


@dataclass
class MemorySampler:
    """Samples VmRSS/VmHWM of every process in a worker's tree from /proc, every `interval` s.

    `peak_kib` is the largest VmHWM (peak resident set) seen per role: the Celery main process, the
    prefork child that runs tasks, and under it the extraction process and its document children.
    `peak_tree_kib` is the largest sum of VmRSS over the tree at one instant (shared pages counted in
    each process: an upper bound).
    """

    main_pid: int
    interval: float = 0.02
    peak_kib: dict[str, int] = field(default_factory=dict)
    peak_tree_kib: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        total = 0
        try:
            main = psutil.Process(self.main_pid)
            pool = main.children()
        except psutil.NoSuchProcess:
            return
        roles = [("main", self.main_pid)] + [("pool child", p.pid) for p in pool]
        for child in pool:
            with suppress(psutil.NoSuchProcess):
                roles += [("extraction child", p.pid) for p in child.children(recursive=True)]
        for role, pid in roles:
            hwm = _status_kib(pid, "VmHWM")
            self.peak_kib[role] = max(self.peak_kib.get(role, 0), hwm)
            total += _status_kib(pid, "VmRSS")
        self.peak_tree_kib = max(self.peak_tree_kib, total)

    def summary(self) -> dict[str, float]:
        figures = {
            f"{role} peak VmHWM MiB": round(kib / 1024, 1) for role, kib in sorted(self.peak_kib.items())
        }
        figures["tree peak VmRSS sum MiB"] = round(self.peak_tree_kib / 1024, 1)
        return figures


# -- figures for the closing note ----------------------------------------------------------------


@dataclass
class Figures:
    """What the runs measured; printed at the end and written to test-artifacts/faults.json."""

    values: dict[str, Any] = field(default_factory=dict)
    recoveries: list[tuple[float, str]] = field(default_factory=list)

    def add(self, name: str, amount: int) -> None:
        self.values[name] = self.values.get(name, 0) + amount

    def recovery(self, seconds: float, what: str) -> None:
        self.recoveries.append((round(seconds, 2), what))

    def report(self) -> dict[str, Any]:
        report = dict(self.values)
        if self.recoveries:
            slowest = max(self.recoveries)
            report["slowest recovery s"] = slowest[0]
            report["slowest recovery"] = slowest[1]
            report["recoveries measured"] = len(self.recoveries)
        return report

    def write(self) -> None:
        report = self.report()
        print("\n[faults] figures:\n" + json.dumps(report, indent=2, default=str))
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "faults.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
