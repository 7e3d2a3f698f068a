"""The per-process worker context: database pool, bucket client, settings."""

from __future__ import annotations

import redis

from shared.db import open_pool
from shared.pipeline.ingest import WorkerContext
from shared.settings import get_settings
from shared.storage import Storage

_context: WorkerContext | None = None


def open_context() -> WorkerContext:
    global _context
    if _context is None:
        settings = get_settings()
        if settings.work_dir is not None:
            settings.work_dir.mkdir(parents=True, exist_ok=True)
        # min_size=0: after a database restart the pool makes fresh connections on demand instead of
        # waiting out its reconnect backoff (psycopg/psycopg#1315).
        pool = open_pool(settings, min_size=0, max_size=2)
        _context = WorkerContext(
            settings=settings,
            pool=pool,
            storage=Storage(settings),
            redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5),
        )
    return _context


def close_context() -> None:
    global _context
    if _context is not None:
        _context.pool.close()
        _context = None
