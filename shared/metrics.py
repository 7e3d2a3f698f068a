"""Prometheus metrics the worker records. The API exports its own gauges from Postgres and Redis.

Workers run prefork children, so they use prometheus_client's multiprocess mode: the worker's main
process serves what all its children recorded (see worker/celery_app.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

STEP_SECONDS = Histogram(
    "chute_ingest_step_seconds",
    "Time spent in each pipeline step of one document.",
    ["step"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
DOCUMENTS_PROCESSED = Counter(
    "chute_documents_processed_total", "Documents a worker finished, by outcome.", ["outcome"]
)
DOCUMENT_FAILURES = Counter(
    "chute_document_failures_total", "Documents that failed, by error code.", ["code"]
)
INGEST_RETRIES = Counter(
    "chute_ingest_retries_total", "Ingestion tasks retried later, by reason.", ["reason"]
)
EMBEDDING_REQUESTS = Counter(
    "chute_embedding_requests_total",
    "Embedding batches requested, by provider and outcome.",
    ["provider", "outcome"],
)
EMBEDDING_THROTTLES = Counter(
    "chute_embedding_throttles_total", "Embedding requests answered 429 (rate limited) by the provider."
)
CHUNKS_TRUNCATED = Counter(
    "chute_chunks_truncated_total",
    "Chunks longer than the embedding model's window (a chunk_size above it was asked for): the model "
    "read only their start.",
)
