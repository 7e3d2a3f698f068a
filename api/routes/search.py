"""`/v1/search`: the caller's tenant's indexed chunks, best first."""

from __future__ import annotations

import time

from fastapi import APIRouter

from api.auth import AuthenticatedRoute
from api.deps import State, Tenant
from api.schemas import SearchHit, SearchIn, SearchOut
from shared.db import transaction
from shared.services import search as search_service

router = APIRouter(prefix="/v1/search", tags=["search"], route_class=AuthenticatedRoute)


@router.post("")
def search(body: SearchIn, tenant: Tenant, state: State) -> SearchOut:
    started = time.perf_counter()
    embedder = state.embedder() if body.mode != "keyword" else None
    with transaction(state.pool) as conn:
        rows = search_service.search(
            conn,
            embedder,
            tenant,
            query=body.query,
            k=body.k,
            mode=body.mode,
            document_ids=body.filter.document_ids if body.filter else None,
            metadata=body.filter.metadata if body.filter else None,
        )
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return SearchOut(results=[SearchHit(**row) for row in rows], took_ms=took_ms)
