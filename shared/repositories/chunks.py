"""Chunk rows with their vectors: replaced whole per document, listed, and searched."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import scalar_row, tuple_row
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

# The keyword half ranks the chunks that have all of the query's words when there are enough of
# them; else those with any of its uncommon words; else, every word being common, any of its words.
# A word found in COMMON_WORD_CHUNKS or more of the chunks searched tells little about any of them
# (BM25 would weigh it next to nothing), and ranking reads every matching chunk: with the common
# words of a sentence, that was most of a tenant's chunks (1.8 s at 100k). Whatever the path, at
# most RANKED_MATCHES_MAX matches are ranked: a query of only common words ranks the first found.
COMMON_WORD_CHUNKS = 1000
RANKED_MATCHES_MAX = 5000

_ALL_WORDS = "plainto_tsquery('english', %(text)s)"
_ANY_OF_WORDS = "replace(plainto_tsquery('simple', %(words)s)::text, ' & ', ' | ')::tsquery"

_ENOUGH_WITH_ALL_WORDS = """
    SELECT count(*) >= %(candidates)s
    FROM (SELECT 1 FROM chunks c WHERE {filters} AND c.tsv @@ {query} LIMIT %(candidates)s) hits
"""

# The query's words as the index holds them (stemmed, stop words gone), each with the number of
# chunks searched that have it, counted up to COMMON_WORD_CHUNKS.
_WORDS = """
    SELECT word,
           (SELECT count(*) FROM (SELECT 1 FROM chunks c
                                  WHERE {filters} AND c.tsv @@ plainto_tsquery('simple', word)
                                  LIMIT %(common)s) hits) AS found
    FROM unnest(tsvector_to_array(to_tsvector('english', %(text)s))) AS word
"""

# Chunks matching more of the words, closer together, rank higher. Normalisation 1 divides by
# 1 + log(length), so a long chunk does not win by sheer size.
_KEYWORD = """
    SELECT m.id, row_number() OVER (ORDER BY m.score DESC, m.id) AS rank, m.score
    FROM (SELECT c.id, ts_rank_cd(c.tsv, q.query, 1) AS score
          FROM chunks c, (SELECT {query} AS query) q
          WHERE {filters} AND c.tsv @@ q.query
          LIMIT %(ranked_max)s) m
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
        "common": COMMON_WORD_CHUNKS,
    }
    if mode == "vector":
        hits = sql.SQL(_VECTOR).format(filters=filters)
    else:
        keyword, params["words"] = _keyword_query(conn, filters, params)
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


def _keyword_query(
    conn: Connection, filters: sql.Composable, params: dict[str, Any]
) -> tuple[sql.Composable, str | None]:
    """The keyword half's tsquery, and the words it matches any of (None: all the query's words)."""
    all_words = sql.SQL(_ALL_WORDS)
    enough = sql.SQL(_ENOUGH_WITH_ALL_WORDS).format(filters=filters, query=all_words)
    if conn.cursor(row_factory=scalar_row).execute(enough, params, prepare=False).fetchone():
        return all_words, None
    words_query = sql.SQL(_WORDS).format(filters=filters)
    words = conn.cursor(row_factory=tuple_row).execute(words_query, params, prepare=False).fetchall()
    uncommon = [word for word, found in words if 0 < found < COMMON_WORD_CHUNKS]
    return sql.SQL(_ANY_OF_WORDS), " ".join(uncommon or [word for word, _ in words])
