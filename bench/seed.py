"""Rows written straight into Postgres for the database benchmarks: tenants, indexed documents, chunks."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from shared.pipeline.elements import Chunk


def prepare(conn: Any) -> None:
    register_vector(conn)


def tenant(conn: Any, name: str | None = None) -> str:
    name = name or f"bench-{uuid.uuid4().hex[:10]}"
    conn.execute("INSERT INTO tenants (id) VALUES (%s) ON CONFLICT DO NOTHING", (name,))
    return name


def document(conn: Any, tenant_id: str, *, chunk_count: int = 0, filename: str | None = None) -> uuid.UUID:
    """An `indexed` document row (search only sees indexed documents), named `filename` or its id."""
    document_id = uuid.uuid4()
    conn.execute(
        """
        INSERT INTO documents (id, tenant_id, filename, file_type, content_type, object_key, status,
                               chunking, chunk_count, indexed_at)
        VALUES (%s, %s, %s, 'txt', 'text/plain', %s, 'indexed', %s, %s, now())
        """,
        (
            document_id,
            tenant_id,
            filename or f"{document_id}.txt",
            f"{tenant_id}/{document_id}",
            Jsonb({"chunk_size": 256, "overlap": 32}),
            chunk_count,
        ),
    )
    return document_id


def unit_vectors(count: int, dimensions: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, dimensions)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def chunks(texts: list[str]) -> list[Chunk]:
    return [
        Chunk(ordinal=i, text=t, page=1, metadata={"element_types": ["NarrativeText"]})
        for i, t in enumerate(texts)
    ]
