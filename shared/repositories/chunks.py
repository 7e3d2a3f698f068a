"""Chunk rows with their vectors: replaced whole per document, listed, and searched."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import scalar_row
from psycopg.types.json import Jsonb

from shared.db import Connection
from shared.pipeline.elements import Chunk

Row = dict[str, Any]

RRF_K = 60  # reciprocal rank fusion constant, as in the original paper


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
) -> list[Row]:
    return conn.execute(
        """
        SELECT id, ordinal, text, page, metadata FROM chunks
        WHERE document_id = %s AND tenant_id = %s AND ordinal > %s
        ORDER BY ordinal
        LIMIT %s
        """,
        (document_id, tenant_id, -1 if after_ordinal is None else after_ordinal, limit),
    ).fetchall()


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


_VECTOR = """
    SELECT c.id, row_number() OVER (ORDER BY c.embedding <=> %(vector)s) AS rank,
           1 - (c.embedding <=> %(vector)s) AS score
    FROM chunks c
    WHERE {filters}
    ORDER BY c.embedding <=> %(vector)s
    LIMIT %(candidates)s
"""

# The keyword half matches chunks with all of the query's words. When fewer than the candidates
# wanted have them all, it matches chunks with any of its words that are not common: a word found in
# COMMON_WORD_CHUNKS or more of the tenant's chunks tells little about any of them (it would weigh
# next to nothing in BM25), and ranking reads every matching chunk: with the common words of a
# sentence, that was most of a tenant's chunks. A small tenant has no common words.
COMMON_WORD_CHUNKS = 1000

_ALL_WORDS = "plainto_tsquery('english', %(text)s)"

_ENOUGH_WITH_ALL_WORDS = """
    SELECT count(*) >= %(candidates)s AS enough
    FROM (SELECT 1 FROM chunks c WHERE {filters} AND c.tsv @@ {query} LIMIT %(candidates)s) hits
"""

# The query's words as the index holds them (stemmed, stop words gone), less the common ones.
_UNCOMMON_WORDS = """
    SELECT coalesce(string_agg(word, ' '), '')
    FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS word
    WHERE (SELECT count(*) FROM (SELECT 1 FROM chunks c
                                 WHERE c.tenant_id = %(tenant)s
                                   AND c.tsv @@ plainto_tsquery('simple', word)
                                 LIMIT %(common)s) hits) < %(common)s
"""

# Chunks matching more of the words, closer together, rank higher. Normalisation 1 divides by
# 1 + log(length), so a long chunk does not win by sheer size.
_KEYWORD = """
    SELECT c.id, row_number() OVER (ORDER BY ts_rank_cd(c.tsv, q.query, 1) DESC, c.id) AS rank,
           ts_rank_cd(c.tsv, q.query, 1) AS score
    FROM chunks c, (SELECT {query} AS query) q
    WHERE {filters} AND c.tsv @@ q.query
    ORDER BY ts_rank_cd(c.tsv, q.query, 1) DESC, c.id
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
    }
    if mode == "vector":
        hits = sql.SQL(_VECTOR).format(filters=filters)
    else:
        keyword = _keyword_query(conn, filters, params)
        hits = sql.SQL(_KEYWORD).format(filters=filters, query=keyword)
    if mode == "hybrid":
        hits = sql.SQL(
            "SELECT id, sum(1.0 / (%(rrf_k)s + rank)) AS score"
            " FROM (({vector}) UNION ALL ({keyword})) ranked GROUP BY id"
        ).format(vector=sql.SQL(_VECTOR).format(filters=filters), keyword=hits)
    query = sql.SQL(
        _RESULT_COLUMNS
        + " FROM ({hits}) hits JOIN chunks c ON c.id = hits.id JOIN documents d ON d.id = c.document_id"
        " ORDER BY hits.score DESC, c.id LIMIT %(k)s"
    ).format(hits=hits)
    if vector is not None:
        # Keep scanning the HNSW graph until enough rows pass the tenant and filter conditions.
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(max(40, candidates))))
    # Never a cached generic plan: one made without this tenant and vector can miss the HNSW index.
    return conn.execute(query, params, prepare=False).fetchall()


def _keyword_query(conn: Connection, filters: sql.Composable, params: dict[str, Any]) -> sql.Composable:
    """A tsquery: all of the query's words when enough chunks have them all, else any of its
    uncommon words; when every word is common, all of them again (the few chunks that have them)."""
    cursor = conn.cursor(row_factory=scalar_row)
    all_words = sql.SQL(_ALL_WORDS)
    check = sql.SQL(_ENOUGH_WITH_ALL_WORDS).format(filters=filters, query=all_words)
    if cursor.execute(check, params, prepare=False).fetchone():
        return all_words
    uncommon = cursor.execute(_UNCOMMON_WORDS, {**params, "common": COMMON_WORD_CHUNKS}, prepare=False)
    words = uncommon.fetchone()
    if not words:
        return all_words
    # The words were made by Postgres from the query and go back as a bound literal.
    return sql.SQL("replace(plainto_tsquery('simple', {})::text, ' & ', ' | ')::tsquery").format(
        sql.Literal(words)
    )
