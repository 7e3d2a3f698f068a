"""The embedding server's Prometheus metrics, in a registry of their own (`GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)

REQUESTS = Counter(
    "chute_embedding_server_requests_total",
    "Embedding requests answered, by outcome (ok, invalid, failed).",
    ["outcome"],
    registry=REGISTRY,
)
TEXTS = Counter("chute_embedding_server_texts_total", "Texts embedded.", registry=REGISTRY)
TOKENS = Counter(
    "chute_embedding_server_tokens_total",
    "Tokens embedded, specials included and padding not (rate() of it is tokens/s).",
    registry=REGISTRY,
)
PADDED_TOKENS = Counter(
    "chute_embedding_server_padded_tokens_total",
    "Tokens the model ran, padding included (over tokens_total: the padding overhead).",
    registry=REGISTRY,
)
BATCH_TEXTS = Histogram(
    "chute_embedding_server_batch_texts", "Texts in one model batch.", buckets=_SIZES, registry=REGISTRY
)
BATCH_REQUESTS = Histogram(
    "chute_embedding_server_batch_requests",
    "Requests whose texts shared one model batch (above 1: batching across clients).",
    buckets=_SIZES,
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "chute_embedding_server_batch_seconds",
    "Model time of one batch, padding and copying the vectors back included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "chute_embedding_server_queue_wait_seconds",
    "From a text's arrival on the queue (tokenised) to the start of the batch that embeds it.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
QUEUED_TEXTS = Gauge(
    "chute_embedding_server_queued_texts", "Texts tokenised and waiting for the model.", registry=REGISTRY
)
