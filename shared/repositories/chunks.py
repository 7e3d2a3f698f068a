"""Chunk rows with their vectors: replaced whole per document, listed, and searched."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from shared.db import Connection, fetch_all
from shared.pipeline.elements import Chunk
from shared.rows import ChunkRow

Row = dict[str, Any]

RRF_K = 60  # reciprocal rank fusion constant, as in the original paper
EF_SEARCH_MAX = 1000  # pgvector's limit; the iterative scan goes on past it until enough rows pass


def replace_chunks(
    conn: Connection, document_id: uuid.UUID, tenant_id: str, chunks: Sequence[Chunk], vectors: np.ndarray
) -> int:
    """Delete a document's chunks and write the new ones with COPY, in the caller's transaction."""
    conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))
    with conn.cursor().copy(
        "COPY chunks (document_id, tenant_id, ordinal, text, page, metadata, embedding)"
        " FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "text", "int4", "text", "int4", "jsonb", "vector"])
        for chunk, vector in zip(chunks, vectors, strict=True):
            copy.write_row(
                (document_id, tenant_id, chunk.ordinal, chunk.text, chunk.page, Jsonb(chunk.metadata), vector)
            )
    return len(chunks)


def list_chunks(
    conn: Connection, tenant_id: str, document_id: uuid.UUID, *, limit: int, after_ordinal: int | None
) -> list[ChunkRow]:
    return fetch_all(
        conn,
        ChunkRow,
        """
        SELECT id, ordinal, text, page, metadata FROM chunks
        WHERE document_id = %s AND tenant_id = %s AND ordinal > %s
        ORDER BY ordinal
        LIMIT %s
        """,
        (document_id, tenant_id, -1 if after_ordinal is None else after_ordinal, limit),
    )


def _filters(document_ids: Sequence[uuid.UUID] | None, metadata: dict[str, Any] | None) -> sql.Composable:
    """Conditions on a chunk `c`. The document's are checked per chunk (EXISTS), not joined, so the
    HNSW scan drives the vector search even when the planner's statistics on documents are stale."""
    conditions: list[sql.Composable] = [sql.SQL("c.tenant_id = %(tenant)s")]
    if document_ids:
        conditions.append(sql.SQL("c.document_id = ANY(%(document_ids)s)"))
    document = [sql.SQL("d.status = 'indexed'")]
    if metadata:
        document.append(sql.SQL("d.metadata @> %(metadata)s"))
    conditions.append(
        sql.SQL("EXISTS (SELECT 1 FROM documents d WHERE d.id = c.document_id AND {})").format(
            sql.SQL(" AND ").join(document)
        )
    )
    return sql.SQL(" AND ").join(conditions)


# The HNSW index holds half-precision copies of the vectors (migration 007_halfvec_hnsw): the scan
# orders by the same expression so that the planner uses it; the score is the full-precision cosine.
_VECTOR = """
    SELECT c.id, row_number() OVER (ORDER BY {half} <=> {query}) AS rank,
           1 - (c.embedding <=> %(vector)s) AS score
    FROM chunks c
    WHERE {filters}
    ORDER BY {half} <=> {query}
    LIMIT %(candidates)s
"""

# The keyword half ranks by BM25 (k1 1.2, b 0.75, as the BEIR paper's BM25 runs), with each word's
# chunk count and the tenant's totals from `chunk_terms` / `chunk_totals` (kept by triggers,
# migration 003_term_stats): no probe of the index per word. The chunks ranked are those holding
# any of the query's rarest words, taken rarest first while their chunks add up to at most
# CANDIDATE_POSTINGS; common words still count in every ranked chunk's score, but chunks that hold
# only common words (BM25 would give them next to nothing) are never read. When even the rarest
# word is in more chunks than that, the chunks with all the words are ranked, the newest
# RANKED_MATCHES_MAX of them.
BM25_K1 = 1.2
BM25_B = 0.75
CANDIDATE_POSTINGS = 2000
RANKED_MATCHES_MAX = 5000

# The query's words as the index holds them (stemmed, stop words gone), each with its chunk count,
# and the tenant's chunk count and average chunk length (distinct words).
_TERMS = """
    SELECT q.word, coalesce(t.chunks, 0) AS found,
           coalesce(totals.chunks, 0) AS total, coalesce(totals.lexemes, 0) AS lexemes
    FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS q(word)
    LEFT JOIN chunk_terms t ON t.tenant_id = %(tenant)s AND t.lexeme = q.word
    LEFT JOIN chunk_totals totals ON totals.tenant_id = %(tenant)s
"""

_ANY_OF = "%(match)s::tsquery"
_ALL_OF = "plainto_tsquery('english', %(text)s)"

# Term frequencies come from the chunk's tsvector cut down to the query's words (setweight marks
# them, ts_filter keeps them): unnesting whole tsvectors was 2.4x slower.
_KEYWORD = """
    SELECT m.id, row_number() OVER (ORDER BY m.score DESC, m.id) AS rank, m.score
    FROM (SELECT c.id, sum(t.idf * w.tf * (%(k1)s + 1)
                           / (w.tf + %(k1)s * (1 - %(b)s + %(b)s * length(c.tsv) / %(average)s))) AS score
          FROM (SELECT c.id, c.tsv FROM chunks c WHERE {filters} AND c.tsv @@ {query}
                {order} LIMIT %(ranked_max)s) c
          CROSS JOIN LATERAL (SELECT u.lexeme, cardinality(u.positions) AS tf
                              FROM unnest(ts_filter(setweight(c.tsv, 'A', %(words)s::text[]), '{{a}}')) u) w
          JOIN unnest(%(words)s::text[], %(idfs)s::float8[]) AS t(word, idf) ON t.word = w.lexeme
          GROUP BY c.id) m
    ORDER BY m.score DESC, m.id
    LIMIT %(candidates)s
"""

_RESULT_COLUMNS = """
    SELECT c.id AS chunk_id, c.document_id, d.filename, c.ordinal, c.page, c.text, c.metadata,
           hits.score
"""


def search_chunks(
    conn: Connection,
    tenant_id: str,
    *,
    mode: str,
    text: str,
    vector: np.ndarray | None,
    k: int,
    document_ids: Sequence[uuid.UUID] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[Row]:
    """The best `k` chunks of a tenant for a query, by `vector`, `keyword` or `hybrid` (RRF) mode."""
    filters = _filters(document_ids, metadata)
    candidates = max(k * 4, 40) if mode == "hybrid" else k
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "text": text,
        "vector": vector,
        "candidates": candidates,
        "k": k,
        "document_ids": list(document_ids or []),
        "metadata": Jsonb(metadata or {}),
        "rrf_k": RRF_K,
        "ranked_max": RANKED_MATCHES_MAX,
        "k1": BM25_K1,
        "b": BM25_B,
    }
    if mode == "vector":
        hits = _vector_hits(filters, vector)
    else:
        match, order = _keyword_terms(conn, params)
        hits = sql.SQL(_KEYWORD).format(filters=filters, query=sql.SQL(match), order=sql.SQL(order))
    if mode == "hybrid":
        hits = sql.SQL(
            "SELECT id, sum(1.0 / (%(rrf_k)s + rank)) AS score"
            " FROM (({vector}) UNION ALL ({keyword})) ranked GROUP BY id"
        ).format(vector=_vector_hits(filters, vector), keyword=hits)
    query = sql.SQL(
        _RESULT_COLUMNS
        + " FROM ({hits}) hits JOIN chunks c ON c.id = hits.id JOIN documents d ON d.id = c.document_id"
        " ORDER BY hits.score DESC, c.id LIMIT %(k)s"
    ).format(hits=hits)
    if vector is not None:
        # Keep scanning the HNSW graph until enough rows pass the tenant and filter conditions.
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        ef_search = min(EF_SEARCH_MAX, max(40, candidates))
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef_search)))
    # Never a cached generic plan: one made without this tenant and vector can miss the HNSW index.
    return conn.execute(query, params, prepare=False).fetchall()


def _vector_hits(filters: sql.Composable, vector: np.ndarray | None) -> sql.Composable:
    """The vector half: candidates in the order of the HNSW index's expression, the chunk's vector
    cast to `halfvec` of the query vector's dimension (the stored one: see check_embedding_dimensions)."""
    if vector is None:
        raise ValueError("a vector search needs the query's vector")
    half = sql.SQL("halfvec({})").format(sql.Literal(len(vector)))
    return sql.SQL(_VECTOR).format(
        filters=filters,
        half=sql.SQL("c.embedding::{}").format(half),
        query=sql.SQL("%(vector)s::{}").format(half),
    )


def _keyword_terms(conn: Connection, params: dict[str, Any]) -> tuple[str, str]:
    """Fill in the keyword half's words, their BM25 weights and its average chunk length; return the
    tsquery that picks the chunks it ranks (any of the rarest words, else all the words) and the
    order they are picked in. The rarest words' chunks are all ranked; of the chunks with all of
    many common words, the newest RANKED_MATCHES_MAX are: an order, so the pick is the same whatever
    plan reads them (unordered, it followed the scan and changed with it)."""
    rows = conn.cursor(row_factory=tuple_row).execute(_TERMS, params, prepare=False).fetchall()
    found = sorted((int(n), word) for word, n, _, _ in rows if n > 0)
    total, lexemes = (int(rows[0][2]), int(rows[0][3])) if rows else (0, 0)
    params["words"] = [word for _, word in found]
    # BM25's inverse document frequency, as Lucene computes it (never below zero).
    params["idfs"] = [math.log(1 + max(0.0, total - n + 0.5) / (n + 0.5)) for n, _ in found]
    params["average"] = lexemes / total if total else 1.0
    rare: list[str] = []
    postings = 0
    for n, word in found:
        if rare and postings + n > CANDIDATE_POSTINGS:
            break
        rare.append(word)
        postings += n
    if not found or postings > CANDIDATE_POSTINGS:
        return _ALL_OF, "ORDER BY c.id DESC"  # every word common (or none indexed): all of them
    params["match"] = " | ".join(_quoted(word) for word in rare)
    return _ANY_OF, ""


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand, read literally whatever its characters."""
    escaped = lexeme.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"
