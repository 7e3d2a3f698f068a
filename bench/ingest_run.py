"""Drive a corpus through the real stack as clients do, and time it.

Clients (8 threads) presign, POST each file straight to the bucket and complete it; the worker
does the rest. The clock starts at the first presign and stops at the last `indexed_at` Postgres
records. Stage timings come from the worker's own `ingest.stage.done` log lines, and each task's
total from Celery's "succeeded in" line.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import wait_for
from bench.corpus import CorpusFile, Prose, simple_pdf
from bench.services import Services

CLIENT_THREADS = 8
FINAL = ("indexed", "failed", "cancelled", "expired")
STAGES = ("download", "extract", "chunk", "embed", "store")
_SUCCEEDED = re.compile(r"succeeded in ([0-9.]+)s")


@dataclass
class IngestRun:
    documents: int
    failed: int
    chunks: int
    seconds: float
    client_ms: dict[str, list[float]] = field(default_factory=dict)
    stage_s: dict[str, list[float]] = field(default_factory=dict)
    task_s: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds by component, during the run
    peak_mib: float = 0.0  # the workers' and embedding server's memory (PSS, summed) at its highest
    tenant: str = ""  # the run's own tenant: its documents are the run's

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.seconds

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds


class Uploader:
    """The client side: presign, POST to the bucket, complete (as `tests.helpers.ChuteClient` does)."""

    def __init__(self, api_url: str, key: str) -> None:
        limits = httpx.Limits(max_connections=CLIENT_THREADS * 2)
        self.api = httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=120, limits=limits
        )
        self.bucket = httpx.Client(timeout=300, limits=limits)
        self.timings: dict[str, list[float]] = defaultdict(list)

    def close(self) -> None:
        self.api.close()
        self.bucket.close()

    def send(self, name: str, data: bytes) -> str:
        body = self._timed(
            "presign", lambda: self.api.post("/v1/uploads", json={"filename": name, "size": len(data)})
        ).json()
        upload, document_id = body["upload"], body["document_id"]
        self._timed(
            "upload",
            lambda: self.bucket.post(upload["url"], data=upload["fields"], files={"file": (name, data)}),
        )
        self._timed("complete", lambda: self.api.post(f"/v1/uploads/{document_id}/complete", json={}))
        return str(document_id)

    def _timed(self, what: str, call: Callable[[], httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        response = call()
        self.timings[what].append((time.perf_counter() - started) * 1000)
        return response.raise_for_status()


def warm_up(services: Services, documents: int) -> None:
    """Small documents through a fresh worker, so every worker process has loaded its embedder."""
    _, key = services.create_key()
    uploader = Uploader(services.api_url, key)
    try:
        prose = Prose(seed=1)
        files = [(f"warm-{i}.pdf", simple_pdf([[prose.text(300)]])) for i in range(documents)]
        with ThreadPoolExecutor(documents) as pool:
            ids = list(pool.map(lambda f: uploader.send(*f), files))
        with services.connect() as conn:
            wait_for(lambda: _count_final(conn, ids) == len(ids), "warm-up indexed", timeout=300)
    finally:
        uploader.close()


def drive(services: Services, files: list[CorpusFile], worker_log: Path, timeout: float) -> IngestRun:
    """Upload `files` for a new tenant and wait until every one reaches a final state."""
    tenant, key = services.create_key()
    log_offset = worker_log.stat().st_size if worker_log.exists() else 0
    uploader = Uploader(services.api_url, key)
    cpu_before = cpu_seconds(services)
    started = time.time()
    with MemoryPeak(services) as memory:
        try:
            with ThreadPoolExecutor(CLIENT_THREADS) as pool:
                list(pool.map(lambda f: uploader.send(f.path.name, f.path.read_bytes()), files))
        finally:
            uploader.close()
        with services.connect() as conn:
            query = """
                SELECT count(*) FILTER (WHERE status = ANY(%s)), count(*) FILTER (WHERE status = 'failed'),
                       coalesce(sum(chunk_count), 0), extract(epoch FROM max(indexed_at))
                FROM documents WHERE tenant_id = %s
            """
            row: Any = (0, 0, 0, None)

            def finished() -> bool:
                nonlocal row
                row = conn.execute(query, (list(FINAL), tenant)).fetchone() or row
                return int(row[0]) >= len(files)

            wait_for(finished, f"{len(files)} documents in a final state", timeout=timeout, interval=0.25)
    cpu_after = cpu_seconds(services)
    _, failed, chunks, last_indexed = row
    stage_s, task_s = _worker_timings(worker_log, log_offset)
    return IngestRun(
        documents=len(files),
        failed=int(failed),
        chunks=int(chunks),
        seconds=float(last_indexed or time.time()) - started,
        client_ms=dict(uploader.timings),
        stage_s=stage_s,
        task_s=task_s,
        cpu_s={name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after},
        peak_mib=memory.peak_mib,
        tenant=tenant,
    )


class MemoryPeak:
    """Samples, every half second until the block ends, the memory the ingesting processes use: every
    worker process and its extraction children, and the embedding server, as PSS (shared pages split
    among the processes that share them, so forked workers are not counted twice). Keeps the highest."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def __enter__(self) -> MemoryPeak:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_mib = max(self.peak_mib, self._now() / 2**20)

    def _now(self) -> float:
        total = 0.0
        for part, member in stack_processes(self.services):
            if part in ("worker", "embedding-server"):
                with contextlib.suppress(psutil.Error):  # it ended since it was listed
                    total += member.memory_full_info().pss
        return total


def stack_processes(services: Services) -> Iterator[tuple[str, psutil.Process]]:
    """Every running process of the stack, its children included, with the part it belongs to."""
    for name, process in list(services.stack.processes.items()):
        try:
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in tree:
            yield _part(name), member


def _part(process_name: str) -> str:
    """The part of the stack a process of `Stack.processes` belongs to: workers go by many names."""
    named = ("postgres", "redis", "s3", "api", "embedding-server")
    return process_name if process_name in named else "worker"


def cpu_seconds(services: Services) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack, with its children (running, or finished and
    reaped: a worker's extraction children, Postgres's backends), and by this process: the clients."""
    used: dict[str, float] = defaultdict(float)
    for part, member in stack_processes(services):
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[part] += times.user + times.system + times.children_user + times.children_system
    own = psutil.Process().cpu_times()
    used["clients (bench process)"] = own.user + own.system
    return dict(used)


def _count_final(conn: Any, ids: list[str]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM documents WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)", (ids, list(FINAL))
    ).fetchone()
    return int(row[0])


def _worker_timings(log: Path, offset: int) -> tuple[dict[str, list[float]], list[float]]:
    stages: dict[str, list[float]] = defaultdict(list)
    tasks: list[float] = []
    with log.open("rb") as file:
        file.seek(offset)
        for raw in file:
            line = raw.decode("utf-8", errors="replace")
            if '"ingest.stage.done"' in line:
                try:
                    event = json.loads(line[line.index("{") :])
                except ValueError:
                    continue
                stages[str(event["stage"])].append(float(event["seconds"]))
            elif match := _SUCCEEDED.search(line):
                tasks.append(float(match.group(1)))
    return dict(stages), tasks
