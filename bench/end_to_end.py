"""2. End to end: the generated corpus (about 200 documents of mixed types, 1-500 pages) through the
real stack, in three arrangements of the same cores: one worker process embedding in-process (the
model's threads on every core), two worker processes embedding in-process (one thread each), and two
worker processes embedding through the embedding server (one model copy on every core). Chunks/s and
docs/s against the model limit from benchmark 1 (target: at least 85 %), and the memory each
arrangement takes."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import Context, Figure, Result, Table, median
from bench.corpus import corpus_size, generate
from bench.ingest_run import STAGES, IngestRun, drive, warm_up
from bench.report import bar_chart
from shared.pipeline.embedding import runtime_of
from shared.settings import Settings

TARGET = 0.85


@dataclass(frozen=True)
class Arrangement:
    label: str
    processes: int
    through_server: bool = False


ARRANGEMENTS = (
    Arrangement("1 process, in-process model", 1),
    Arrangement("2 processes, in-process model", 2),
    Arrangement("2 processes, embedding server", 2, through_server=True),
)


def run(ctx: Context) -> Result:
    result = Result("end_to_end", "2. End to end: the corpus through the real stack", ctx.smoke)
    documents, max_pages = corpus_size(ctx.smoke)
    files = generate(ctx.work / "corpus", documents=documents, max_pages=max_pages)
    model = ctx.previous("model")
    runtime = str(model.data["runtime"]) if model else runtime_of(Settings())
    limit = float(model.data["limit_chunks_per_s"]) if model else float("nan")

    services = ctx.services
    runs: dict[str, IngestRun] = {}
    used: set[str] = set()
    with services.api():
        for arrangement in ARRANGEMENTS:
            env = {
                "CHUTE_EMBEDDING_PROVIDER": "local",
                "CHUTE_EMBEDDING_RUNTIME": runtime,
                "CHUTE_WORKER_CONCURRENCY": str(arrangement.processes),  # threads: the cores shared out
                "CHUTE_WORKER_METRICS_PORT": "0",
            }
            with ExitStack() as started:
                if arrangement.through_server:
                    env |= services.stack.start_embedding_server(env={"CHUTE_EMBEDDING_RUNTIME": runtime})
                    started.callback(services.stack.stop, "embedding-server")
                    health = httpx.get(f"http://127.0.0.1:{services.stack.ports.embeddings}/health").json()
                    used.add(f"{health['runtime']} (embedding server)")
                log = started.enter_context(services.workers(f"e2e-{len(runs)}", env))
                warm_up(services, 2 * arrangement.processes)
                runs[arrangement.label] = drive(services, files, log, timeout=120 if ctx.smoke else 1200)
                used |= _runtimes_loaded(log)

    for label, ingest in runs.items():
        share = ingest.chunks_per_s / limit
        result.figures += [
            Figure(f"{label}: chunks/s", ingest.chunks_per_s, "chunks/s"),
            Figure(f"{label}: docs/s", ingest.docs_per_s, "docs/s"),
            Figure(f"{label}: memory at its peak", ingest.peak_mib, "MiB"),
            Figure(
                f"{label}: share of model limit",
                100 * share,
                "%",
                target=f">= {TARGET:.0%}",
                met=share >= TARGET,
            ),
        ]
    result.tables.append(
        Table(
            [
                "arrangement",
                "documents",
                "failed",
                "chunks",
                "seconds",
                "docs/s",
                "chunks/s",
                "% of limit",
                "peak memory MiB",
            ],
            [
                [
                    label,
                    r.documents,
                    r.failed,
                    r.chunks,
                    r.seconds,
                    r.docs_per_s,
                    r.chunks_per_s,
                    100 * r.chunks_per_s / limit,
                    r.peak_mib,
                ]
                for label, r in runs.items()
            ],
            title=f"Corpus: {documents} documents, {sum(f.pages for f in files)} pages, "
            f"{sum(f.size for f in files) / 1e6:.1f} MB; model limit {limit:.1f} chunks/s ({runtime})",
        )
    )
    result.tables.append(_stage_table(runs))
    cores = len(os.sched_getaffinity(0))
    result.tables.append(_cpu_table(runs, cores))
    best = max(runs, key=lambda label: runs[label].chunks_per_s)
    result.figures.append(Figure(f"fastest: {best}", runs[best].chunks_per_s, "chunks/s"))
    result.notes += [
        f"Runtime the workers loaded: {', '.join(sorted(used)) or 'not logged'} "
        f"(the model limit is {runtime}'s).",
        "Memory: the workers' processes (with their extraction children) and the embedding server, "
        "summed as PSS (pages shared between forked processes split among them), sampled every half "
        "second; the highest sum. Postgres, Redis, S3 and the API are the same in every arrangement.",
        "Through the server, the server's own CPU is its column in the CPU table; the model estimate "
        "there is the server's CPU.",
        "The clock runs from the first presign to the last document's `indexed_at`: uploads, queueing, "
        "download, extraction, chunking, embedding and the COPY into Postgres all count. The API, "
        "Postgres, Redis, S3, 8 client threads and the worker share the same 2 cores.",
        "Stage times are the worker's own (`ingest.stage.done` log lines); 'other' is the task's "
        "total less its stages (claim, progress updates, starting the extraction child, Celery).",
        "CPU: seconds each part of the stack used during the run (psutil, children included), as a share "
        f"of the {cores} cores over the run. The model's share is the worker's CPU less its time in the "
        "other stages (single-threaded, so their wall time bounds their CPU time): an estimate. The "
        "pipeline can reach at most about that share of the model limit, which is measured with the "
        "model alone on every core.",
    ]
    labels = ["model limit", *[label.replace(", ", "\n") for label in runs]]
    values = [limit, *[r.chunks_per_s for r in runs.values()]]
    result.plots.append(
        bar_chart(
            ctx.out / "end_to_end.png",
            labels,
            values,
            title="End-to-end ingestion against the model limit",
            ylabel="chunks/s",
            target=TARGET * limit,
            target_label=f"{TARGET:.0%} of the model limit",
        )
    )
    result.data = {
        label: {"chunks_per_s": r.chunks_per_s, "docs_per_s": r.docs_per_s, "peak_mib": r.peak_mib}
        for label, r in runs.items()
    }
    return result


def _stage_table(runs: dict[str, IngestRun]) -> Table:
    rows = []
    for label, ingest in runs.items():
        total = sum(ingest.task_s)
        staged = {stage: sum(ingest.stage_s.get(stage, [])) for stage in STAGES}
        other = max(0.0, total - sum(staged.values()))
        cells = [f"{100 * staged[s] / total:.1f} %" if total else "n/a" for s in STAGES]
        rows.append(
            [
                label,
                total,
                *cells,
                f"{100 * other / total:.1f} %" if total else "n/a",
                median(ingest.task_s),
            ]
        )
    return Table(
        ["arrangement", "task seconds (sum)", *STAGES, "other", "median task s"],
        rows,
        title="Where the worker's time goes (share of summed task time)",
    )


def _cpu_table(runs: dict[str, IngestRun], cores: int) -> Table:
    parts = sorted({part for ingest in runs.values() for part in ingest.cpu_s})
    rows = []
    for label, ingest in runs.items():
        available = cores * ingest.seconds
        shares = [f"{100 * ingest.cpu_s.get(part, 0.0) / available:.1f} %" for part in parts]
        idle = available - sum(ingest.cpu_s.values())
        rows.append(
            [
                label,
                available,
                *shares,
                f"{100 * max(0.0, idle) / available:.1f} %",
                f"{100 * _model_core_share(ingest, cores):.1f} %",
            ]
        )
    return Table(
        ["arrangement", "core-seconds", *parts, "idle", "model (estimate)"],
        rows,
        title=f"Where the CPU went: share of the {cores} cores during the run",
    )


def _model_core_share(ingest: IngestRun, cores: int) -> float:
    if "embedding-server" in ingest.cpu_s:
        return ingest.cpu_s["embedding-server"] / (cores * ingest.seconds)
    other_stages = sum(ingest.task_s) - sum(ingest.stage_s.get("embed", []))
    return max(0.0, ingest.cpu_s.get("worker", 0.0) - other_stages) / (cores * ingest.seconds)


def _runtimes_loaded(log: Path) -> set[str]:
    """The embedding runtimes the worker's processes report loading (`embedding.loaded`)."""
    found = set()
    for line in log.read_text(errors="replace").splitlines():
        if '"embedding.loaded"' in line and "{" in line:
            runtime = json.loads(line[line.index("{") :]).get("runtime")
            if runtime:  # none for a worker that embeds through the server
                found.add(str(runtime))
    return found
