"""13. Scale-out: the same documents through 1, 2 and 3 worker hosts, then 3 with one SIGKILLed.

Each host is a network namespace of its own (`infra.hosts`): its own address, its own loopback, the
stack's folder hidden, reaching Postgres, Redis, S3 and the embedder only over its veth pair. Each
runs one worker with the default settings (one process). The embedder is the OpenAI-compatible stub
answering each request after a fixed latency, so a host spends most of a document waiting on it and
this 2-core machine measures how the hosts share the queue and the database, not CPU. Hosts are
added one by one; each run uploads the same documents for a tenant of its own.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Context, Figure, Result, Table, loadavg, wait_for
from bench.corpus import CorpusFile, Prose
from bench.ingest_run import IngestRun, drive, warm_up
from bench.report import line_chart
from bench.services import Services
from infra.hosts import Host, HostsUnavailable, isolated_hosts, listen_options
from tests import openai_stub

HOSTS = 3
TARGET_SPEEDUP = 1.8
# A reconciler every second and a short lease (`Size.lease`), so the killed host's document is taken
# over within seconds (defaults: 30 s and 300 s); everything else is the default.
SETTINGS = {
    "CHUTE_RECONCILE_INTERVAL_SECONDS": "1",
    "CHUTE_EMBEDDING_PROVIDER": "openai",
    "CHUTE_EMBEDDING_MODEL": "stub",
    "CHUTE_EMBEDDING_DIMENSIONS": "384",
    "CHUTE_WORKER_CONCURRENCY": "1",  # one process a host: hosts are what this counts
}


@dataclass
class Size:
    documents: int
    chars: int  # per document: about 1,200 generated characters make one 256-token chunk
    latency: float  # seconds the embedder takes per request (one request per document up to 64 chunks)
    lease: int  # CHUTE_LEASE_SECONDS: how long the killed host's document stays held


FULL = Size(documents=48, chars=19_000, latency=1.0, lease=10)
SMOKE = Size(documents=6, chars=2_500, latency=0.2, lease=5)


@dataclass
class Run:
    hosts: int
    ingest: IngestRun
    load: list[float]  # 1-minute load average at the start and the end
    by_host: dict[str, int]  # documents each host indexed


def run(ctx: Context) -> Result:
    result = Result("scale", "13. Scale-out: worker hosts in network namespaces", ctx.smoke)
    size = SMOKE if ctx.smoke else FULL
    files = _documents(ctx.work / "scale-documents", size)
    with ExitStack() as resources:
        try:
            hosts = resources.enter_context(isolated_hosts(HOSTS))
        except HostsUnavailable as error:
            result.notes.append(f"Skipped: {error}. The benchmark needs root (`ip netns`, veth pairs).")
            return result
        stub = resources.enter_context(openai_stub.running(384, latency=size.latency, host=hosts[0].host_ip))
        services = Services(
            ctx.work / "scale-stack",
            {**SETTINGS, "CHUTE_OPENAI_BASE_URL": f"{stub}/v1", "CHUTE_LEASE_SECONDS": str(size.lease)},
            **listen_options(hosts),
        )
        resources.callback(services.close)
        services.stack.start_reconciler()
        resources.enter_context(services.api())
        logs: dict[str, Path] = {}
        runs: list[Run] = []
        timeout = 120 if ctx.smoke else 600
        for host in hosts:
            logs[host.name] = resources.enter_context(
                services.workers(host.name, host.worker_env(services.stack), netns=host.netns)
            )
            warm_up(services, len(logs))
            runs.append(_measured(services, logs, files, timeout))
        victim = hosts[-1]
        killer = _Killer(services, victim, logs[victim.name])
        killer.start()
        killed = _measured(services, logs, files, timeout)
        killer.join()
        if not killer.in_flight:
            raise RuntimeError(f"{victim.name} was never seen holding a document after indexing one")
        check = _check(services, killed.ingest.tenant, killer.killed_at, killer.in_flight)

    _report(result, size, files, runs, killed, check, victim, ctx.out)
    return result


def _documents(folder: Path, size: Size) -> list[CorpusFile]:
    folder.mkdir(parents=True, exist_ok=True)
    prose = Prose(seed=13)
    files = []
    for index in range(size.documents):
        path = folder / f"scale-{index}.txt"
        path.write_text("\n\n".join(prose.paragraphs(size.chars)))
        files.append(CorpusFile(path, "txt", 1))
    return files


def _measured(services: Services, logs: dict[str, Path], files: list[CorpusFile], timeout: float) -> Run:
    """`files` through the hosts whose worker logs are `logs`, for a tenant of their own."""
    offsets = {name: log.stat().st_size for name, log in logs.items()}
    load_start = loadavg()[0]
    ingest = drive(services, files, logs["host-0"], timeout)
    by_host = {name: len(_events(log, offsets[name], "ingest.indexed")) for name, log in logs.items()}
    return Run(len(logs), ingest, [load_start, loadavg()[0]], by_host)


def _events(log: Path, offset: int, event: str) -> list[str]:
    """Document ids of the worker's `event` log lines after `offset`, in order."""
    found = []
    with log.open("rb") as file:
        file.seek(offset)
        for raw in file:
            line = raw.decode("utf-8", errors="replace")
            if line.startswith("{") and f'"{event}"' in line:
                found.append(str(json.loads(line)["document_id"]))
    return found


class _Killer(threading.Thread):
    """SIGKILLs a host's worker (its whole process group: the host died) once it has indexed a document
    of this run and holds another, `processing` in Postgres."""

    def __init__(self, services: Services, host: Host, log: Path) -> None:
        super().__init__(daemon=True)
        self.services, self.host, self.log = services, host, log
        self.offset = log.stat().st_size
        self.killed_at = 0.0
        self.in_flight = ""

    def run(self) -> None:
        with self.services.connect() as conn:

            def holding() -> bool:
                done = set(_events(self.log, self.offset, "ingest.indexed"))
                running = [d for d in _events(self.log, self.offset, "ingest.claimed") if d not in done]
                row = conn.execute(
                    "SELECT id::text FROM documents WHERE id = ANY(%s::uuid[]) AND status = 'processing'",
                    (running,),
                ).fetchone()
                if done and row:
                    self.in_flight = str(row[0])
                return bool(self.in_flight)

            wait_for(holding, f"{self.host.name} indexing one document and holding another", 300, 0.02)
        self.killed_at = time.time()
        self.services.stack.stop(self.host.name, sig=signal.SIGKILL)


def _check(services: Services, tenant: str, killed_at: float, in_flight: str) -> dict[str, Any]:
    """Every document of the killed run: not indexed (lost), chunk ordinals stored twice, and how long
    the killed host's document took to be indexed by another host after the kill."""
    with services.connect() as conn:
        rows: Any = conn.execute(
            "SELECT status, count(*) FROM documents WHERE tenant_id = %s GROUP BY status", (tenant,)
        ).fetchall()
        doubled = _scalar(
            conn,
            "SELECT count(*) FROM (SELECT 1 FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE d.tenant_id = %s GROUP BY c.document_id, c.ordinal HAVING count(*) > 1) AS twice",
            tenant,
        )
        miscounted = _scalar(
            conn,
            "SELECT count(*) FROM documents d WHERE d.tenant_id = %s"
            " AND d.chunk_count <> (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)",
            tenant,
        )
        indexed_at = _scalar(
            conn, "SELECT extract(epoch FROM indexed_at) FROM documents WHERE id = %s", in_flight
        )
        attempts = _scalar(conn, "SELECT attempts FROM documents WHERE id = %s", in_flight)
        requeued_at = _scalar(
            conn, "SELECT extract(epoch FROM queued_at) FROM documents WHERE id = %s", in_flight
        )
    by_status = {str(status): int(n) for status, n in rows}
    return {
        "statuses": by_status,
        "lost": sum(n for status, n in by_status.items() if status != "indexed"),
        "doubled": int(doubled),
        "chunk_count_mismatches": int(miscounted),
        "requeued_s": float(requeued_at) - killed_at if requeued_at is not None else float("nan"),
        "recovery_s": float(indexed_at) - killed_at if indexed_at is not None else float("nan"),
        "in_flight_attempts": int(attempts or 0),
    }


def _scalar(conn: Any, statement: str, *params: Any) -> Any:
    row = conn.execute(statement, params).fetchone()
    return row[0] if row else None


def _report(
    result: Result,
    size: Size,
    files: list[CorpusFile],
    runs: list[Run],
    killed: Run,
    check: dict[str, Any],
    victim: Host,
    out: Path,
) -> None:
    one = runs[0].ingest.docs_per_s
    speedups = [r.ingest.docs_per_s / one for r in runs]
    chunks = runs[0].ingest.chunks / max(1, runs[0].ingest.documents)
    for r, speedup in zip(runs, speedups, strict=True):
        result.figures.append(
            Figure(f"{r.hosts} host{'s' if r.hosts > 1 else ''}: docs/s", r.ingest.docs_per_s, "docs/s")
        )
        if r.hosts == 2:
            met = speedup >= TARGET_SPEEDUP
            result.figures.append(
                Figure("2 hosts / 1 host", speedup, "x", target=f"≥ {TARGET_SPEEDUP}x", met=met)
            )
        elif r.hosts > 2:
            result.figures.append(Figure(f"{r.hosts} hosts / 1 host", speedup, "x"))
    result.figures += [
        Figure(
            f"{victim.name} killed mid-run: documents lost",
            check["lost"],
            "",
            target="0",
            met=not check["lost"],
        ),
        Figure(
            f"{victim.name} killed mid-run: chunks stored twice or miscounted",
            check["doubled"] + check["chunk_count_mismatches"],
            "",
            target="0",
            met=not (check["doubled"] or check["chunk_count_mismatches"]),
        ),
        Figure("killed host's document queued again, after the kill", check["requeued_s"], "s"),
        Figure("killed host's document indexed by another, after the kill", check["recovery_s"], "s"),
    ]
    rows = []
    for r, speedup in [*zip(runs, speedups, strict=True), (killed, killed.ingest.docs_per_s / one)]:
        label = f"{r.hosts}" if r is not killed else f"{r.hosts}, {victim.name} SIGKILLed"
        ingest = r.ingest
        # The killed host's CPU time went with it: no total for that run.
        cores = sum(ingest.cpu_s.values()) / ingest.seconds if r is not killed else "n/a"
        rows.append(
            [
                label,
                ingest.documents,
                ingest.chunks,
                ingest.seconds,
                ingest.docs_per_s,
                ingest.chunks_per_s,
                speedup,
                r.hosts / size.latency,
                " / ".join(str(r.by_host.get(f"host-{i}", 0)) for i in range(HOSTS)),
                cores,
                f"{r.load[0]:.2f} → {r.load[1]:.2f}",
            ]
        )
    result.tables.append(
        Table(
            [
                "hosts",
                "documents",
                "chunks",
                "seconds",
                "docs/s",
                "chunks/s",
                "x 1 host",
                "embedder bound docs/s",
                "indexed by host-0 / 1 / 2",
                "CPU cores used (all processes)",
                "load (1 min) start → end",
            ],
            rows,
            title=(
                f"{len(files)} text documents of {size.chars:,} characters ({chunks:.0f} chunks each); "
                f"embedder latency {size.latency:g} s per request; one worker process per host"
            ),
        )
    )
    result.notes += [
        "Each host is a network namespace joined to this machine by a veth pair (`infra/hosts.py`); its "
        "worker reaches Postgres, Redis, S3 and the embedder at addresses on that link and sees none of "
        "the stack's files. The clock runs from the first presign to the last `indexed_at`. "
        f"`embedder bound` is hosts / latency: each document is one embedding request of {size.latency:g} s, "
        "and a host with one worker process sends one at a time. `CPU cores used` counts every process "
        "of the stack and the clients: far under the 2 cores, so the hosts wait on the embedder, as "
        "hosts waiting on a remote model server do.",
        f"The SIGKILL run: {victim.name}'s whole process group is killed once it has indexed a document of "
        f"the run and holds another (`processing`); its lease ({size.lease} s here) "
        f"runs out, the reconciler queues the document again ({check['requeued_s']:.1f} s after the kill) "
        "behind the documents still waiting (a requeued document's `queued_at` is the requeue), and "
        f"another host indexes it ({check['recovery_s']:.1f} s after the kill, attempt "
        f"{check['in_flight_attempts']}). Statuses after the run: {check['statuses']}; "
        f"{check['doubled']} chunk ordinals stored twice, {check['chunk_count_mismatches']} whose "
        "chunk rows differ from `chunk_count`.",
    ]
    xs = [float(r.hosts) for r in runs]
    result.plots.append(
        line_chart(
            out / "scale.png",
            xs,
            {
                "measured docs/s": [r.ingest.docs_per_s for r in runs],
                "linear (1 host x hosts)": [one * x for x in xs],
                "embedder bound (hosts / latency)": [x / size.latency for x in xs],
            },
            title=f"Worker hosts in network namespaces, embedder latency {size.latency:g} s",
            xlabel="worker hosts",
            ylabel="documents/s",
        )
    )
    result.data = {
        "size": vars(size),
        "runs": [
            {
                "hosts": r.hosts,
                "docs_per_s": r.ingest.docs_per_s,
                "chunks_per_s": r.ingest.chunks_per_s,
                "seconds": r.ingest.seconds,
                "by_host": r.by_host,
                "load": r.load,
                "cpu_s": r.ingest.cpu_s,
            }
            for r in [*runs, killed]
        ],
        "killed": {"host": victim.name, **check},
    }
