"""What a worker process holds for its whole life, made once after fork: settings, database pool,
bucket client, Redis client and the embedder; and recovering the pool after a database failure.

Contract: `WorkerContext.open` connects nothing eagerly but the pool's minimum (zero), so a worker
starts while its dependencies are away. The embedder is built on first use and kept: the local model
loads once per process. `close` releases the pool. One context per process, never shared across fork.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
import redis
import structlog
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.cores import model_threads
from shared.db import open_pool
from shared.pipeline.embedding import Embedder, make_embedder
from shared.settings import Settings
from shared.storage import Storage

log = structlog.get_logger("chute.worker")


@dataclass(slots=True)
class WorkerContext:
    settings: Settings
    pool: ConnectionPool
    storage: Storage
    redis: redis.Redis
    _embedder: Embedder | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> WorkerContext:
        if settings.work_dir is not None:
            settings.work_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            # min_size=0: after a database restart the pool makes fresh connections on demand instead
            # of waiting out its reconnect backoff (psycopg/psycopg#1315).
            pool=open_pool(settings, min_size=0, max_size=2),
            storage=Storage(settings),
            redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5),
        )

    def close(self) -> None:
        self.pool.close()

    def embedder(self) -> Embedder:
        """The process's embedder, built on first use and kept. A build that raised is tried again
        by the next caller (the worker stays up to fail documents with the reason)."""
        if self._embedder is None:
            # The worker's processes share the cores: each model gets its share of the threads.
            threads = model_threads(self.settings)
            self._embedder = make_embedder(
                self.settings.model_copy(update={"torch_threads": threads}), self.redis
            )
        return self._embedder

    def recover_pool(self, error: psycopg.OperationalError) -> None:
        """After a database error: drop the broken connections now, so the next delivery gets a
        fresh one. A pool that could not hand out any connection for its whole timeout is replaced:
        in one clean-clone run a worker's pool never recovered from a Postgres restart, every claim
        timing out for ten minutes after the server was back (compare psycopg/psycopg#1315)."""
        if not isinstance(error, PoolTimeout):
            self.pool.check()
            return
        log.warning("worker.pool.replaced", error=str(error))
        stale = self.pool
        self.pool = open_pool(self.settings, min_size=stale.min_size, max_size=stale.max_size)
        stale.close(timeout=0)
