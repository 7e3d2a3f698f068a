"""4. Writes: chunks with vectors into Postgres by COPY (what the pipeline does) against one INSERT per
row, and psycopg's executemany (pipelined INSERTs) in between; rows/s. Measured on the real `chunks`
table (HNSW, GIN on the generated text-search vector, B-trees), on a copy without indexes, and on a
bare copy without indexes or the generated column, which leaves the wire protocol alone. Target: COPY
at least 10x per-row INSERT."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from bench import seed
from bench.common import Context, Figure, Result, Table
from bench.corpus import Prose
from bench.report import grouped_bar_chart
from shared.pipeline.elements import Chunk
from shared.repositories.chunks import replace_chunks

TARGET = 10.0
COLUMNS = "document_id, tenant_id, ordinal, text, page, metadata, embedding"
# table -> (label, how to make it from `chunks`)
TABLES = {
    "chunks": ("chunks table: HNSW + GIN + B-trees", None),
    "bench_chunks_noindex": (
        "no indexes (generated tsvector kept)",
        "CREATE TABLE {t} (LIKE chunks INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY)",
    ),
    "bench_chunks_bare": (
        "bare: no indexes, no generated column",
        "CREATE TABLE {t} (LIKE chunks INCLUDING DEFAULTS INCLUDING IDENTITY);"
        " ALTER TABLE {t} DROP COLUMN tsv",
    ),
}

Writer = Callable[[Any, str, uuid.UUID, str, list[Chunk], np.ndarray], None]


def run(ctx: Context) -> Result:
    result = Result("writes", "4. Writes: COPY against per-row INSERT", ctx.smoke)
    rows = 60 if ctx.smoke else 3000
    prose = Prose(seed=5)
    chunks = seed.chunks([prose.text(730) for _ in range(rows)])
    vectors = seed.unit_vectors(rows, 384, np.random.default_rng(5))
    methods: dict[str, Writer] = {
        "COPY": _copy,
        "executemany": _executemany,
        "INSERT per row": _insert_each,
        "INSERT per row, commit each": _insert_each_committed,
    }
    rates: dict[str, dict[str, float]] = {}
    with ctx.services.connect() as conn:
        seed.prepare(conn)
        tenant = seed.tenant(conn)
        try:
            for table, (_, create) in TABLES.items():
                if create:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                    conn.execute(create.format(t=table))
                rates[table] = {}
                with conn.transaction():  # warm the table, its indexes and the statements
                    _copy(conn, table, seed.document(conn, tenant), tenant, chunks[:20], vectors[:20])
                for name, write in methods.items():
                    document_id = seed.document(conn, tenant)
                    started = time.perf_counter()
                    if name.endswith("commit each"):  # the connection is in autocommit mode
                        write(conn, table, document_id, tenant, chunks, vectors)
                    else:
                        with conn.transaction():
                            write(conn, table, document_id, tenant, chunks, vectors)
                    rates[table][name] = rows / (time.perf_counter() - started)
        finally:
            for table, (_, create) in TABLES.items():
                if create:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute("DELETE FROM documents WHERE tenant_id = %s", (tenant,))

    ratios = {table: rates[table]["COPY"] / rates[table]["INSERT per row"] for table in TABLES}
    result.figures += [
        Figure("COPY rows/s (chunks table)", rates["chunks"]["COPY"], "rows/s"),
        Figure("INSERT per row rows/s (chunks table)", rates["chunks"]["INSERT per row"], "rows/s"),
    ]
    result.figures += [
        Figure(
            f"COPY / per-row INSERT, {TABLES[t][0]}",
            ratios[t],
            "x",
            target=f">= {TARGET:.0f}x",
            met=ratios[t] >= TARGET,
        )
        for t in TABLES
    ]
    result.tables.append(
        Table(
            ["method", *[f"{label} rows/s" for label, _ in TABLES.values()]],
            [[name, *[rates[t][name] for t in TABLES]] for name in methods]
            + [["COPY / INSERT per row", *[f"{ratios[t]:.1f}x" for t in TABLES]]]
            + [
                [
                    "COPY / INSERT per row, commit each",
                    *[f"{rates[t]['COPY'] / rates[t]['INSERT per row, commit each']:.1f}x" for t in TABLES],
                ]
            ],
            title=f"{rows} chunks of 730 characters with 384-dimensional vectors, one transaction per method",
        )
    )
    result.notes.append(
        "COPY is `shared.repositories.chunks.replace_chunks` itself (binary COPY). 'INSERT per row' sends "
        "one statement per chunk and waits for each answer, all in one transaction (the target is judged "
        "against it); 'commit each' does the same on an autocommit connection, as row-by-row code often "
        "does (Postgres runs with fsync on); 'executemany' is psycopg 3's pipelined "
        "executemany. Every row also feeds the generated `tsvector` column, and, on the real table, the "
        "HNSW graph: that index upkeep costs the same whichever way the rows arrive."
    )
    result.plots.append(
        grouped_bar_chart(
            ctx.out / "writes.png",
            list(methods),
            {label: [rates[t][m] for m in methods] for t, (label, _) in TABLES.items()},
            title="Writing chunks with vectors",
            ylabel="rows/s",
            log=True,
        )
    )
    return result


def _copy(
    conn: Any, table: str, document_id: uuid.UUID, tenant: str, chunks: list[Chunk], vectors: np.ndarray
) -> None:
    if table == "chunks":
        replace_chunks(conn, document_id, tenant, chunks, vectors)
        return
    with conn.cursor().copy(f"COPY {table} ({COLUMNS}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["uuid", "text", "int4", "text", "int4", "jsonb", "vector"])
        for chunk, vector in zip(chunks, vectors, strict=True):
            copy.write_row(
                (document_id, tenant, chunk.ordinal, chunk.text, chunk.page, Jsonb(chunk.metadata), vector)
            )


def _values(
    document_id: uuid.UUID, tenant: str, chunks: list[Chunk], vectors: np.ndarray
) -> list[tuple[Any, ...]]:
    return [
        (document_id, tenant, c.ordinal, c.text, c.page, Jsonb(c.metadata), v)
        for c, v in zip(chunks, vectors, strict=True)
    ]


def _insert_each(
    conn: Any, table: str, document_id: uuid.UUID, tenant: str, chunks: list[Chunk], vectors: np.ndarray
) -> None:
    statement = f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    for values in _values(document_id, tenant, chunks, vectors):
        conn.execute(statement, values)


def _insert_each_committed(
    conn: Any, table: str, document_id: uuid.UUID, tenant: str, chunks: list[Chunk], vectors: np.ndarray
) -> None:
    """What code that inserts row by row on an autocommit connection does: a commit (a WAL flush)
    per chunk."""
    _insert_each(conn, table, document_id, tenant, chunks, vectors)


def _executemany(
    conn: Any, table: str, document_id: uuid.UUID, tenant: str, chunks: list[Chunk], vectors: np.ndarray
) -> None:
    statement = f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    conn.cursor().executemany(statement, _values(document_id, tenant, chunks, vectors))
