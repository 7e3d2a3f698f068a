"""7. Search at 100k chunks: p50/p99 latency and recall@10 against an exact scan, with the HNSW index,
for vector and hybrid modes, through the search SQL the API runs (`shared.repositories.chunks`).
Targets: p50 under 15 ms, recall@10 at least 0.95.

The chunks are synthetic, shaped like embeddings of real text: 1,000 topics, each vector its topic's
direction plus noise (cosine about 0.6 between neighbours, about 0 across topics); queries are fresh
points near a topic. Their text, for the keyword half of hybrid, is one of four kinds: short (three
words of the generated prose), a whole sentence, rare words (RARE_WORDS, each put in about one chunk in
RARE_EVERY) and all-common words (words in most chunks). The generated prose has a small vocabulary, so
every one of its words is in thousands of chunks: the keyword half then ranks the chunks with all the
query's words. The rows are loaded with COPY and the HNSW index is rebuilt once (as after a bulk
import); build time is reported. An ef_search sweep on the plain vector query shows what recall costs
in latency.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import numpy as np
from psycopg.types.json import Jsonb

from bench import seed
from bench.common import Context, Figure, Result, Table, percentile
from bench.corpus import Prose
from bench.report import grouped_bar_chart, line_chart
from shared.repositories.chunks import search_chunks

P50_MS = 15.0
RECALL = 0.95
DIMENSIONS = 384
TOPICS = 1000
NOISE = 0.8
K = 10
EF_SWEEP = [40, 80, 160]
# Words the generated prose never uses, each added to one chunk in RARE_EVERY.
RARE_WORDS = ["zeolite", "marimba", "quinoa", "trilobite", "gazpacho", "sextant", "obsidian", "kumquat"]
RARE_EVERY = 2000
COMMON_QUERIES = ["every near", "near every one", "every one near the"]


def run(ctx: Context) -> Result:
    result = Result("search", "7. Search: latency and recall at 100k chunks", ctx.smoke)
    total = 2000 if ctx.smoke else 100_000
    queries = 20 if ctx.smoke else 200
    judged = 10 if ctx.smoke else 50  # recall needs an exact scan per query: slow at 100k
    rng = np.random.default_rng(17)
    topics = seed.unit_vectors(TOPICS, DIMENSIONS, rng)
    services = ctx.services
    with services.connect() as conn:
        seed.prepare(conn)
        # No server-side prepared statements: a generic plan cached while `enable_indexscan = off`
        # would be reused by the HNSW runs (and vice versa), and the comparison would be void.
        conn.prepare_threshold = None
        tenant, build_s, load_s = _load(conn, rng, topics, total)
        index = _index_definition(conn)
        query_vectors = _near_topics(rng, topics, queries)
        prose = Prose(seed=23)
        query_texts = [" ".join(prose.sentence().split()[:3]) for _ in range(queries)]
        kinds = {
            "whole sentence": [prose.sentence() for _ in range(queries)],
            "rare words": [
                f"{RARE_WORDS[i % len(RARE_WORDS)]} {RARE_WORDS[(i * 3 + 1) % len(RARE_WORDS)]} {word}"
                for i, word in enumerate(q.split()[-1] for q in query_texts)
            ],
            "all-common words": [COMMON_QUERIES[i % len(COMMON_QUERIES)] for i in range(queries)],
        }
        measured: dict[str, dict[str, Any]] = {
            "vector": _measure(conn, tenant, "vector", query_vectors, query_texts, judged),
            "hybrid": _measure(conn, tenant, "hybrid", query_vectors, query_texts, judged),
            **{
                f"hybrid, {kind}": _measure(conn, tenant, "hybrid", query_vectors, texts, judged)
                for kind, texts in kinds.items()
            },
        }
        sweep = _ef_sweep(conn, tenant, query_vectors[:judged])
        rows_in_table = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    api_ms = _through_api(ctx, tenant, query_texts[: 5 if ctx.smoke else 50])

    for mode, m in measured.items():
        result.figures += [
            Figure(f"{mode} p50", m["p50"], "ms", target=f"< {P50_MS:.0f} ms", met=m["p50"] < P50_MS),
            Figure(f"{mode} p99", m["p99"], "ms"),
            Figure(f"{mode} recall@10", m["recall"], "", target=f">= {RECALL}", met=m["recall"] >= RECALL),
        ]
    result.figures.append(
        Figure("hybrid through the API (query embedded), p50", percentile(api_ms, 50), "ms")
    )
    result.tables.append(
        Table(
            ["mode", "p50 ms", "p99 ms", "recall@10", "exact scan p50 ms"],
            [[mode, m["p50"], m["p99"], m["recall"], m["exact_p50"]] for mode, m in measured.items()],
            title=f"{total:,} chunks in one tenant ({rows_in_table:,} rows in the table), "
            f"{queries} queries of each kind timed, {judged} of each judged against an exact scan, k={K}; "
            "hybrid: short queries of three words unless named",
        )
    )
    result.tables.append(
        Table(
            ["hnsw.ef_search", "recall@10", "p50 ms", "p99 ms"],
            [[ef, s["recall"], s["p50"], s["p99"]] for ef, s in sweep.items()],
            title="Plain vector query (the vector half of search) at other ef_search values,"
            " recall against exact full precision",
        )
    )
    result.tables.append(
        Table(
            ["step", "seconds"],
            [
                ["COPY of the chunks (HNSW index dropped)", load_s],
                [f"HNSW index build: {index}", build_s],
            ],
            title="Loading",
        )
    )
    result.notes += [
        "Latency is measured in the benchmark process around `search_chunks` (one transaction, the "
        "same SQL and settings the API uses: iterative scan, ef_search = max(40, candidates)); recall@10 "
        "compares its top 10 with the same query under `enable_indexscan = off` (an exact scan of the "
        "same halfvec expression); the ef_search sweep compares the index against an exact scan of the "
        "full-precision vectors. "
        f"Through the API, hybrid search also embeds the query: p50 {percentile(api_ms, 50):.1f} ms, "
        f"p99 {percentile(api_ms, 99):.1f} ms over {len(api_ms)} queries.",
    ]
    result.plots.append(
        grouped_bar_chart(
            ctx.out / "search_latency.png",
            list(measured),
            {
                "p50 ms": [m["p50"] for m in measured.values()],
                "p99 ms": [m["p99"] for m in measured.values()],
                "exact scan p50 ms": [m["exact_p50"] for m in measured.values()],
            },
            title=f"Search latency at {total:,} chunks",
            ylabel="ms",
            log=True,
        )
    )
    result.plots.append(
        line_chart(
            ctx.out / "search_ef.png",
            EF_SWEEP,
            {"recall@10": [sweep[ef]["recall"] for ef in EF_SWEEP]},
            title="Recall@10 against hnsw.ef_search (vector query)",
            xlabel="ef_search",
            ylabel="recall@10",
            logx=True,
        )
    )
    return result


def _near_topics(rng: np.random.Generator, topics: np.ndarray, count: int) -> np.ndarray:
    picks = topics[rng.integers(0, len(topics), count)]
    noise = rng.standard_normal(picks.shape).astype(np.float32) / np.sqrt(picks.shape[1])
    vectors = picks + NOISE * noise
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def _load(conn: Any, rng: np.random.Generator, topics: np.ndarray, total: int) -> tuple[str, float, float]:
    """COPY `total` chunks for a new tenant, then rebuild the HNSW index: (tenant, build s, load s)."""
    tenant = seed.tenant(conn)
    prose = Prose(seed=19)
    per_document = 1000
    started = time.perf_counter()
    # The index as the migrations made it (halfvec, its m and ef_construction), rebuilt after the load.
    (index,) = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding'").fetchone()
    conn.execute("DROP INDEX chunks_embedding")
    with conn.transaction():
        for begin in range(0, total, per_document):
            count = min(per_document, total - begin)
            document_id = seed.document(conn, tenant, chunk_count=count)
            vectors = _near_topics(rng, topics, count)
            with conn.cursor().copy(
                "COPY chunks (document_id, tenant_id, ordinal, text, page, metadata, embedding)"
                " FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["uuid", "text", "int4", "text", "int4", "jsonb", "vector"])
                for ordinal in range(count):
                    text = prose.text(400)
                    if (begin + ordinal) % RARE_EVERY == 0:
                        text += (
                            f" The {RARE_WORDS[(begin + ordinal) // RARE_EVERY % len(RARE_WORDS)]} was noted."
                        )
                    copy.write_row((document_id, tenant, ordinal, text, 1, Jsonb({}), vectors[ordinal]))
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '2GB'")
    conn.execute("SET max_parallel_maintenance_workers = 1")
    conn.execute(index)
    # Fresh statistics, as autovacuum leaves them. With stale ones for `documents` (a bulk import
    # seconds old) the planner joins documents first and scans every chunk: 50x slower.
    conn.execute("ANALYZE chunks")
    conn.execute("ANALYZE documents")
    return tenant, time.perf_counter() - started, load_s


def _measure(
    conn: Any, tenant: str, mode: str, vectors: np.ndarray, texts: list[str], judged: int
) -> dict[str, Any]:
    def search(vector: np.ndarray, text: str, exact: bool) -> tuple[list[uuid.UUID], float]:
        started = time.perf_counter()
        with conn.transaction():
            if exact:
                conn.execute("SET LOCAL enable_indexscan = off")
            rows = search_chunks(conn, tenant, mode=mode, text=text, vector=vector, k=K)
        return [r[0] for r in rows], (time.perf_counter() - started) * 1000

    search(vectors[0], texts[0], exact=False)  # warm-up
    approx = [search(v, t, exact=False) for v, t in zip(vectors, texts, strict=True)]
    exact = [search(v, t, exact=True) for v, t in zip(vectors[:judged], texts[:judged], strict=True)]
    recall = np.mean(
        [len(set(a[0]) & set(e[0])) / max(1, len(e[0])) for a, e in zip(approx, exact, strict=False)]
    )
    latencies = [ms for _, ms in approx]
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "recall": float(recall),
        "exact_p50": percentile([ms for _, ms in exact], 50),
    }


def _index_definition(conn: Any) -> str:
    """The vector index's method, expression and build settings, as Postgres reports them."""
    (definition,) = conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding'"
    ).fetchone()
    return str(definition).split(" USING ", 1)[1]


def _ef_sweep(conn: Any, tenant: str, vectors: np.ndarray) -> dict[int, dict[str, float]]:
    """Recall@10 and latency of the plain vector query at each ef_search in EF_SWEEP."""
    half = f"halfvec({DIMENSIONS})"
    query = (
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.tenant_id = %s"
        f" AND d.status = 'indexed' ORDER BY c.embedding::{half} <=> %s::{half} LIMIT %s"
    )
    exact = (
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
        " WHERE c.tenant_id = %s AND d.status = 'indexed' ORDER BY c.embedding <=> %s LIMIT %s"
    )

    def top(vector: np.ndarray, settings: list[str], query: str = query) -> tuple[set[int], float]:
        with conn.transaction():
            for setting in settings:
                conn.execute(setting)
            started = time.perf_counter()
            found = {r[0] for r in conn.execute(query, (tenant, vector, K)).fetchall()}
            return found, (time.perf_counter() - started) * 1000

    # Against the exact full-precision order: what the halfvec index loses shows here.
    truths = [top(v, [], exact)[0] for v in vectors]
    sweep: dict[int, dict[str, float]] = {}
    for ef in EF_SWEEP:
        settings = ["SET LOCAL hnsw.iterative_scan = relaxed_order", f"SET LOCAL hnsw.ef_search = {int(ef)}"]
        runs = [top(v, settings) for v in vectors]
        latencies = [ms for _, ms in runs]
        recall = np.mean(
            [len(found & truth) / max(1, len(truth)) for (found, _), truth in zip(runs, truths, strict=True)]
        )
        sweep[ef] = {
            "recall": float(recall),
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
        }
    return sweep


def _through_api(ctx: Context, tenant: str, texts: list[str]) -> list[float]:
    """Hybrid searches through POST /v1/search as a client sees them (the query is embedded too)."""
    services = ctx.services
    _, key = services.create_key(tenant)
    latencies: list[float] = []
    with (
        services.api(),
        httpx.Client(
            base_url=services.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as http,
    ):
        for text in texts:
            started = time.perf_counter()
            http.post("/v1/search", json={"query": text, "k": K, "mode": "hybrid"}).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies
