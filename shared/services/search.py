"""Search over a tenant's indexed chunks: vector, keyword, or hybrid (reciprocal rank fusion)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from shared.db import Connection
from shared.pipeline.embedding import Embedder
from shared.repositories import chunks as chunk_rows

Mode = Literal["hybrid", "vector", "keyword"]


def search(
    conn: Connection,
    embedder: Embedder | None,
    tenant_id: str,
    *,
    query: str,
    k: int,
    mode: Mode,
    document_ids: list[uuid.UUID] | None,
    metadata: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    vector = None
    if mode != "keyword":
        assert embedder is not None
        vector = embedder.embed([query])[0]
    return chunk_rows.search_chunks(
        conn,
        tenant_id,
        mode=mode,
        text=query,
        vector=vector,
        k=k,
        document_ids=document_ids,
        metadata=metadata,
    )
