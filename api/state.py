"""What the API process holds for its lifetime: settings, database pool, bucket, queue."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import structlog
from celery import Celery
from psycopg_pool import ConnectionPool

from api.live import LiveHub
from api.snapshots import Snapshot
from shared.db import ReadPool
from shared.pipeline.embedding import Embedder, make_embedder
from shared.settings import Settings
from shared.storage import Storage


@dataclass
class AppState:
    settings: Settings
    pool: ConnectionPool  # units of work, run in the thread pool
    reads: ReadPool  # single-statement reads on the event loop: status and key lookups
    storage: Storage
    celery: Celery
    # Rate counters: short timeouts, so a Redis outage cannot stall requests. (Declared before the
    # `redis` field, which would shadow the module in later annotations.)
    limits: redis.asyncio.Redis
    # Sync client (thread pool): change notices from units of work, and the /ready and /metrics checks.
    notices: redis.Redis
    redis: redis.asyncio.Redis  # document change notices (SSE)
    proxied_uploads: asyncio.Semaphore
    live: LiveHub  # the one Redis subscription behind every SSE stream, and their caps
    # /ready and /metrics answer from these: one dependency check per interval, whatever the traffic.
    readiness: Snapshot[tuple[int, dict[str, Any]]] = field(default_factory=lambda: Snapshot(1.0))
    metrics: Snapshot[bytes] = field(default_factory=lambda: Snapshot(5.0))
    _embedder_lock: threading.Lock = field(default_factory=threading.Lock)
    _embedder: Embedder | None = None

    def embedder(self) -> Embedder:
        """The query embedder, loaded on first use (the local model takes a few seconds)."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings, self.notices)
            return self._embedder

    def warm_up(self) -> None:
        """Load the query embedder ahead of the first search (run in a background thread)."""
        try:
            self.embedder()
        except Exception:  # the first search reports it
            structlog.get_logger("chute.api").exception("api.embedder.unavailable")
