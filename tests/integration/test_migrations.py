"""Migration 007 on a database of its own: the vector index moves to halfvec and the vectors stored
before it stay searchable, through the index, with their full-precision scores; progress reports
become HOT updates."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

import shared.db
from infra.stack import Stack, wait_until
from shared.pipeline.elements import Chunk
from shared.repositories.chunks import replace_chunks, search_chunks
from shared.repositories.documents import report_progress
from shared.settings import Settings

DIMENSIONS = 384


@pytest.fixture
def empty_database(stack: Stack) -> Iterator[str]:
    """A new database on the test stack's Postgres; its URL."""
    name = f"chute_migrations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield stack.database_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_vectors_stored_before_007_are_found_after_it(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=empty_database, embedding_dimensions=DIMENSIONS)
    every_file = shared.db._migration_files()
    monkeypatch.setattr(shared.db, "_migration_files", lambda: [f for f in every_file if f[0] < "007"])
    shared.db.migrate(settings)
    vectors = np.random.default_rng(7).standard_normal((300, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tenant, document_id = _document_with_chunks(empty_database, vectors)

    monkeypatch.setattr(shared.db, "_migration_files", lambda: every_file)
    assert [v for v in shared.db.migrate(settings) if v.startswith("007")] == [
        "007_halfvec_hnsw",
        "007_progress_hot",
    ]

    with psycopg.connect(empty_database, row_factory=dict_row) as conn:
        register_vector(conn)
        for ordinal in (0, 123, 299):
            with conn.transaction():
                hits = search_chunks(conn, tenant, mode="vector", text="", vector=vectors[ordinal], k=3)
            assert hits[0]["ordinal"] == ordinal
            assert hits[0]["document_id"] == document_id
            assert hits[0]["score"] == pytest.approx(1.0, abs=1e-6)  # from the stored full-precision vector
        # Search's own SQL reads the new index (300 rows: the planner would rather scan them whole).
        scans = _index_scans(conn)
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_sort = off")
            assert search_chunks(conn, tenant, mode="hybrid", text="chunk", vector=vectors[5], k=1)
        assert _index_scans(conn) > scans


def _index_scans(conn: psycopg.Connection[Any]) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.commit()
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'chunks_embedding'"
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row["idx_scan"])


def _document_with_chunks(url: str, vectors: np.ndarray) -> tuple[str, uuid.UUID]:
    """An indexed document of one tenant holding a chunk per vector, written as the worker writes them."""
    tenant, document_id = "migrated", uuid.uuid4()
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.execute("INSERT INTO tenants (id) VALUES (%s)", (tenant,))
        conn.execute(
            "INSERT INTO documents (id, tenant_id, filename, file_type, content_type, object_key, status,"
            " chunking, chunk_count, indexed_at)"
            " VALUES (%s, %s, 'old.txt', 'txt', 'text/plain', %s, 'indexed', %s, %s, now())",
            (document_id, tenant, f"{tenant}/{document_id}", Jsonb({}), len(vectors)),
        )
        chunks = [Chunk(ordinal=i, text=f"Chunk {i}.", page=None, metadata={}) for i in range(len(vectors))]
        replace_chunks(conn, document_id, tenant, chunks, vectors)  # type: ignore[arg-type]
    return tenant, document_id


def test_progress_reports_leave_the_documents_indexes_alone(empty_database: str) -> None:
    """A worker's progress reports (step, progress, lease) are HOT updates: the row changes in place
    and no index of `documents` gets a new entry (with the index on (status, updated_at) none was)."""
    shared.db.migrate(Settings(database_url=empty_database, embedding_dimensions=DIMENSIONS))
    with psycopg.connect(empty_database, autocommit=True, row_factory=dict_row) as conn:
        tenant = f"t-{uuid.uuid4().hex[:12]}"
        conn.execute("INSERT INTO tenants (id) VALUES (%s)", (tenant,))
        ids = [uuid.uuid4() for _ in range(20)]
        for document_id in ids:
            conn.execute(
                "INSERT INTO documents (id, tenant_id, filename, file_type, content_type, object_key, status,"
                " chunking, attempts) VALUES (%s, %s, 'a.txt', 'txt', 'text/plain', %s, 'processing', %s, 1)",
                (document_id, tenant, f"{tenant}/{document_id}", Jsonb({})),
            )
        before = _updates(conn)
        for step, progress in [("extracting", 10), ("chunking", 30), ("embedding", 35), ("storing", 90)]:
            for document_id in ids:
                with conn.transaction():
                    assert report_progress(
                        conn, document_id, 1, step=step, progress=progress, lease_seconds=60
                    )
        wait_until(lambda: _updates(conn)[0] - before[0] >= 80, "the statistics to count the updates", 30)
        updates, hot = (now - then for now, then in zip(_updates(conn), before, strict=True))
    assert (updates, hot) == (80, 80)


def _updates(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Updates of `documents` rows, all and HOT, as the statistics have them now."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'documents'"
    ).fetchone()
    assert row is not None
    return int(row["n_tup_upd"]), int(row["n_tup_hot_upd"])
