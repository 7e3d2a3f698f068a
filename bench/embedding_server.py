"""12. Embedding server: chunks/s through `POST /v1/embeddings` with 1, 4 and 16 concurrent clients,
against the in-process embedder on the same chunks, with the server's batch sizes and queue wait.

Chunks: 1,000 characters of real text (SciFact abstracts, bench/real_text.py; generated prose where
that data is absent). Each client sends requests of 16 chunks (the pipeline's average batch per
document, issue 13) back to back; the server batches across them. The in-process figure is the local
embedder called on the same chunks 16 at a time, as a worker embeds a small document, and all at once
(its own batches of CHUTE_EMBEDDING_BATCH_SIZE): the model's rate without HTTP.

End to end, which `make up` should use: a small generated corpus through the real stack with two
worker processes embedding in-process (one model thread each, the fastest measured arrangement on 2
cores) and then with two worker processes embedding through the server (one model copy, every core).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import Context, Figure, Result, Table, percentile
from bench.corpus import Prose, generate
from bench.gpu.run import server_metrics
from bench.ingest_run import IngestRun, drive, warm_up
from bench.real_text import SCIFACT, available, real_text_chunks
from bench.report import bar_chart
from shared.pipeline.embedding import make_local_embedder, runtime_of
from shared.settings import Settings

CHUNK_CHARS = 1000
PER_REQUEST = 16
CONCURRENCY = (1, 4, 16)
MODEL = "all-MiniLM-L6-v2"


def run(ctx: Context) -> Result:
    result = Result(
        "embedding_server", "12. Embedding server: one model copy serving many clients", ctx.smoke
    )
    count = 16 if ctx.smoke else 256
    if available():
        chunks, source = real_text_chunks(count, CHUNK_CHARS), f"SciFact abstracts ({SCIFACT.parent})"
    else:
        chunks = [Prose(i).text(CHUNK_CHARS) for i in range(count)]
        source = "generated prose (SciFact is absent here)"

    settings = Settings()
    embedder = make_local_embedder(settings, runtime_of(settings))
    embedder.embed(chunks[:PER_REQUEST])  # warm-up
    started = time.perf_counter()
    for begin in range(0, len(chunks), PER_REQUEST):
        embedder.embed(chunks[begin : begin + PER_REQUEST])
    in_process_16 = len(chunks) / (time.perf_counter() - started)
    started = time.perf_counter()
    embedder.embed(chunks)
    in_process_all = len(chunks) / (time.perf_counter() - started)
    del embedder

    stack = ctx.services.stack
    served = stack.start_embedding_server()
    try:
        url = f"http://127.0.0.1:{stack.ports.embeddings}"
        health = httpx.get(f"{url}/health", timeout=10).json()
        levels = [measure(url, chunks, clients) for clients in CONCURRENCY]
        end_to_end = compare_end_to_end(ctx, served)
    finally:
        stack.stop("embedding-server")

    rows: list[list[object]] = [
        ["in-process, 16 per call", "-", round(in_process_16, 1), *["-"] * 4],
        [
            f"in-process, all in one call (batches of {settings.embedding_batch_size})",
            "-",
            round(in_process_all, 1),
            *["-"] * 4,
        ],
    ]
    for level in levels:
        rows.append(
            [
                f"server, {level['clients']} client(s)",
                level["clients"],
                round(level["chunks_per_s"], 1),
                round(level["mean_batch"], 1),
                round(level["mean_queue_wait_ms"], 1),
                round(level["p50_ms"]),
                round(level["p95_ms"]),
            ]
        )
    result.tables.append(
        Table(
            ["how", "clients", "chunks/s", "mean batch (texts)", "mean queue wait ms", "p50 ms", "p95 ms"],
            rows,
            title=f"{len(chunks)} chunks of ~{CHUNK_CHARS} characters, {source}; {PER_REQUEST} per request",
        )
    )
    result.tables.append(
        Table(
            ["worker processes embed", "documents", "failed", "chunks", "seconds", "chunks/s", "docs/s"],
            [
                [
                    how,
                    r.documents,
                    r.failed,
                    r.chunks,
                    round(r.seconds, 1),
                    round(r.chunks_per_s, 1),
                    round(r.docs_per_s, 2),
                ]
                for how, r in end_to_end.items()
            ],
            title="End to end, 2 worker processes: in-process model against the embedding server",
        )
    )
    best = max(levels, key=lambda level: level["chunks_per_s"])
    result.figures += [
        Figure("in-process, 16 per call", round(in_process_16, 1), "chunks/s"),
        *(
            Figure(f"server, {lv['clients']} client(s)", round(lv["chunks_per_s"], 1), "chunks/s")
            for lv in levels
        ),
        Figure(
            "server's best / in-process (16 per call)", round(best["chunks_per_s"] / in_process_16, 2), "x"
        ),
        Figure(f"mean batch, {best['clients']} clients", round(best["mean_batch"], 1), "texts"),
        *(
            Figure(f"end to end, {how}", round(r.chunks_per_s, 1), "chunks/s")
            for how, r in end_to_end.items()
        ),
    ]
    result.plots.append(
        bar_chart(
            ctx.out / "embedding_server.png",
            [
                "in-process\n16 per call",
                "in-process\nall at once",
                *(f"server\n{c} client(s)" for c in CONCURRENCY),
            ],
            [in_process_16, in_process_all, *(level["chunks_per_s"] for level in levels)],
            title=f"Chunks/s of ~{CHUNK_CHARS} characters ({health['device']}, {health['runtime']})",
            ylabel="chunks/s",
        )
    )
    result.notes.append(
        f"Server: {health['device']}, runtime {health['runtime']}, default settings "
        f"(max {settings.embedding_server_max_batch_tokens} tokens per batch, max wait "
        f"{settings.embedding_server_max_wait_ms:g} ms); clients in this process (threads, httpx, base64 "
        "vectors), on the same cores as the server. In-process: the same runtime, no HTTP."
    )
    result.data = {
        "levels": levels,
        "in_process_16": in_process_16,
        "in_process_all": in_process_all,
        "end_to_end": {how: _summary(r) for how, r in end_to_end.items()},
    }
    return result


def _summary(run: IngestRun) -> dict[str, float]:
    return {"documents": run.documents, "failed": run.failed, "chunks": run.chunks, "seconds": run.seconds}


def compare_end_to_end(ctx: Context, served: dict[str, str]) -> dict[str, IngestRun]:
    """The same small corpus through the stack, embedded in-process and then through the running
    server (`served`: the settings that point a worker at it)."""
    files = generate(
        ctx.work / "server-corpus", documents=2 if ctx.smoke else 20, max_pages=1 if ctx.smoke else 10
    )
    services = ctx.services
    runs: dict[str, IngestRun] = {}
    settings = {"CHUTE_WORKER_CONCURRENCY": "2", "CHUTE_WORKER_METRICS_PORT": "0"}
    with services.api():
        with services.workers("server-bench-local", {**settings, "CHUTE_EMBEDDING_PROVIDER": "local"}) as log:
            warm_up(services, 4)
            runs["in-process"] = drive(services, files, log, timeout=1200)
        with services.workers("server-bench-served", {**settings, **served}) as log:
            warm_up(services, 4)
            runs["through the server"] = drive(services, files, log, timeout=1200)
    return runs


def measure(url: str, chunks: list[str], clients: int) -> dict[str, float]:
    """Every chunk sent once, in requests of PER_REQUEST, by `clients` threads; with the server's
    batch and queue-wait figures over the run (from /metrics)."""
    requests = [chunks[i : i + PER_REQUEST] for i in range(0, len(chunks), PER_REQUEST)]
    latencies: list[float] = []
    lock = threading.Lock()
    before = server_metrics(url)

    def send(share: list[list[str]]) -> None:
        with httpx.Client(timeout=300) as http:
            for texts in share:
                sent = time.perf_counter()
                answer = http.post(
                    f"{url}/v1/embeddings", json={"model": MODEL, "input": texts, "encoding_format": "base64"}
                )
                answer.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [requests[i::clients] for i in range(clients)]))
    seconds = time.perf_counter() - started
    after = server_metrics(url)
    batches = after["batch_texts_count"] - before["batch_texts_count"]
    texts = after["batch_texts_sum"] - before["batch_texts_sum"]
    waits = after["queue_wait_seconds_count"] - before["queue_wait_seconds_count"]
    return {
        "clients": clients,
        "chunks_per_s": len(chunks) / seconds,
        "mean_batch": texts / batches if batches else float("nan"),
        "mean_queue_wait_ms": 1000
        * (after["queue_wait_seconds_sum"] - before["queue_wait_seconds_sum"])
        / max(1.0, waits),
        "padding_ratio": (after["padded_tokens_total"] - before["padded_tokens_total"])
        / max(1.0, after["tokens_total"] - before["tokens_total"]),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
    }
