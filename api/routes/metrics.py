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
from shared.repositories import documents
from shared.services.documents import STATUSES

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
        counts = documents.status_counts(conn)
        for status in STATUSES:
            by_status.labels(status).set(counts.get(status, 0))
        for code, count in documents.failure_counts(conn).items():
            failures.labels(code).set(count)
        oldest.set(documents.oldest_queued_seconds(conn))
    try:
        depth.set(queue_depth(redis.Redis.from_url(state.settings.redis_url, socket_timeout=2)))
    except redis.RedisError:
        depth.set(float("nan"))
    return generate_latest(registry)
