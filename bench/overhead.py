"""3. Pipeline overhead: small documents through the real stack with an instant embedder (an
OpenAI-compatible stub that answers at once), so what is left is Chute itself: docs/s with 1 and 2
worker processes, and where the time goes per step (client calls, S3, extraction, database); then the
same documents extracted in this process and through the isolated extraction process, while this
process holds the local model as a worker does."""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import asdict
from typing import Any

from bench.common import Context, Figure, Result, Table, percentile
from bench.corpus import CorpusFile, generate
from bench.ingest_run import STAGES, IngestRun, drive, warm_up
from bench.report import grouped_bar_chart
from shared.errors import DocumentFailed
from shared.pipeline import isolation
from shared.pipeline.elements import elements_from_data
from shared.pipeline.embedding import make_local_embedder, runtime_of
from shared.pipeline.extract import extract, extract_data
from shared.pipeline.extractors.ocr import OcrOptions
from shared.settings import Settings
from tests import openai_stub


def run(ctx: Context) -> Result:
    result = Result("overhead", "3. Pipeline overhead: an instant embedder", ctx.smoke)
    files = generate(ctx.work / "small", documents=6 if ctx.smoke else 200, max_pages=1, seed=11)
    services = ctx.services
    runs: dict[str, IngestRun] = {}
    with openai_stub.running(384) as stub, services.api():
        for label, processes in CONFIGURATIONS:
            env = {
                "CHUTE_EMBEDDING_PROVIDER": "openai",
                "CHUTE_OPENAI_BASE_URL": f"{stub}/v1",
                "CHUTE_EMBEDDING_MODEL": "stub",
                "CHUTE_EMBEDDING_DIMENSIONS": "384",
                "CHUTE_WORKER_CONCURRENCY": str(processes),
                "CHUTE_WORKER_METRICS_PORT": "0",
            }
            with services.workers(f"overhead-{len(runs)}", env) as log:
                warm_up(services, processes)
                runs[label] = drive(services, files, log, timeout=120 if ctx.smoke else 600)

    total_kb = sum(f.size for f in files) / 1e3
    for label, ingest in runs.items():
        result.figures.append(Figure(f"{label}: docs/s (small documents)", ingest.docs_per_s, "docs/s"))
    result.tables.append(
        Table(
            ["worker", "documents", "failed", "chunks", "seconds", "docs/s", "chunks/s"],
            [
                [p, r.documents, r.failed, r.chunks, r.seconds, r.docs_per_s, r.chunks_per_s]
                for p, r in runs.items()
            ],
            title=f"{len(files)} one-page documents of mixed types, {total_kb:.0f} kB",
        )
    )
    steps = ["presign", "upload", "complete"]
    one = runs[CONFIGURATIONS[0][0]]
    samples = {f"client: {s}": one.client_ms.get(s, []) for s in steps}
    samples |= {_LABELS[s]: [1000 * x for x in one.stage_s.get(s, [])] for s in STAGES}
    task_ms = [1000 * x for x in one.task_s]
    staged_ms = sum(1000 * sum(one.stage_s.get(s, [])) for s in STAGES)
    other_ms = (sum(task_ms) - staged_ms) / max(1, len(task_ms))
    rows = [
        [name, _mean(values), percentile(values, 50), percentile(values, 99)]
        for name, values in samples.items()
    ]
    rows.append(["worker: other (claim, progress, Celery)", other_ms, "", ""])
    rows.append(["worker: whole task", _mean(task_ms), percentile(task_ms, 50), percentile(task_ms, 99)])
    result.tables.append(
        Table(["step", "mean ms", "p50 ms", "p99 ms"], rows, title="Per document, 1 worker process")
    )
    isolated = _extraction_in_process_and_isolated(files)
    result.figures.append(Figure("extraction isolated: ms per small document", isolated[1][3], "ms"))
    result.tables.append(
        Table(
            ["extraction", "documents", "seconds", "ms per document"],
            isolated,
            title="The same documents extracted in this process and isolated, the local model loaded here",
        )
    )
    result.notes += [
        "Each worker process starts an extraction process from a fresh interpreter before it loads its "
        "model; that process imports the extractor libraries once and forks a small child per document "
        "(no model, no sockets, no secrets). The stub embeds at once (a hash-seeded vector per text), so "
        "these documents measure the pipeline alone. Client steps are timed by the 8 uploading threads; "
        "worker steps from its log.",
    ]
    result.plots.append(
        grouped_bar_chart(
            ctx.out / "overhead_steps.png",
            [*steps, *STAGES, "other"],
            {"mean ms": [float(r[1]) for r in rows[: len(steps) + len(STAGES) + 1]]},
            title="Per-document time by step (instant embedder, 1 worker process)",
            ylabel="ms",
        )
    )
    result.data = {label: {"docs_per_s": r.docs_per_s} for label, r in runs.items()}
    return result


def _extraction_in_process_and_isolated(files: list[CorpusFile]) -> list[list[Any]]:
    """Seconds to extract `files` here and through `run_isolated`, with the local model loaded here
    (before the extraction process, every document's child was a fork of a process that big)."""
    settings = Settings()
    embedder = make_local_embedder(settings, runtime_of(settings))  # held (loaded) to the end
    embedder.embed(["warm up"])
    ocr = OcrOptions()
    isolation.start()
    extract(files[0].path, files[0].file_type, ocr)  # imports and the extraction process's start-up
    _isolated(files[0], ocr)
    rows: list[list[Any]] = []
    for label, one in (("in process", _in_process), ("isolated (one child per document)", _isolated)):
        started = time.perf_counter()
        for file in files:
            with suppress(DocumentFailed):  # a document that fails costs its time all the same
                one(file, ocr)
        seconds = time.perf_counter() - started
        rows.append([label, len(files), seconds, 1000 * seconds / len(files)])
    isolation.stop()
    return rows


def _in_process(file: CorpusFile, ocr: OcrOptions) -> None:
    extract(file.path, file.file_type, ocr)


def _isolated(file: CorpusFile, ocr: OcrOptions) -> None:
    isolation.run_isolated(
        extract_data,
        str(file.path),
        file.file_type,
        asdict(ocr),
        memory_limit=2 * 1024**3,
        timeout=600,
        what="Extracting the text",
        decode=elements_from_data,
    )


# (label, worker processes)
CONFIGURATIONS = [("1 worker process", 1), ("2 worker processes", 2)]

_LABELS = {
    "download": "worker: download (S3)",
    "extract": "worker: extract (isolated child)",
    "chunk": "worker: chunk",
    "embed": "worker: embed (stub over HTTP)",
    "store": "worker: store (Postgres COPY)",
}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
