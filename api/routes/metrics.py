"""`/metrics`: Prometheus text. Document figures come from Postgres and the queue depth from Redis,
taken at most once every 5 s per process (scrapes in between get that snapshot); workers serve their
own step timings, retries and failures (worker/celery_app.py)."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, ProcessCollector, generate_latest

from api.auth import limit_anonymous
from api.deps import State
from api.state import AppState
from shared.db import transaction
from shared.queue_inspection import queue_depth
from shared.services.documents import document_figures

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, dependencies=[Depends(limit_anonymous)])
def metrics(state: State) -> Response:
    return Response(state.metrics.get(lambda: _scrape(state)), media_type=CONTENT_TYPE_LATEST)


def _scrape(state: AppState) -> bytes:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    by_status = Gauge("chute_documents", "Documents by status.", ["status"], registry=registry)
    failures = Gauge("chute_documents_failed", "Failed documents by error code.", ["code"], registry=registry)
    oldest = Gauge("chute_oldest_queued_seconds", "Age of the oldest queued document.", registry=registry)
    depth = Gauge("chute_queue_depth", "Ingestion messages waiting in Redis.", registry=registry)
    with transaction(state.pool) as conn:
        figures = document_figures(conn)
    for status, count in figures.by_status.items():
        by_status.labels(status).set(count)
    for code, count in figures.failures.items():
        failures.labels(code).set(count)
    oldest.set(figures.oldest_queued_seconds)
    try:
        depth.set(queue_depth(state.notices))
    except redis.RedisError:
        depth.set(float("nan"))
    return generate_latest(registry)
