"""The reconciler process: `python -m worker.reconciler` runs `reconcile` every interval.

A process of its own, so repairs never wait behind documents in the ingestion queue. Run one (or
more: a Redis lock lets only one pass run at a time). It survives its dependencies going away.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import kombu.exceptions
import psycopg
import redis
import structlog

from shared.db import open_pool
from shared.logging import configure_logging
from shared.queue import make_celery, send_ingest
from shared.services.reconcile import reconcile
from shared.settings import get_settings
from shared.storage import Storage, StorageError

log = structlog.get_logger("chute.reconcile")

UNAVAILABLE = (
    psycopg.OperationalError,
    redis.RedisError,
    StorageError,
    kombu.exceptions.OperationalError,
)


def main() -> None:
    configure_logging()
    settings = get_settings()
    pool = open_pool(settings, min_size=1, max_size=2)
    storage = Storage(settings)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    celery = make_celery(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("reconcile.started", interval=settings.reconcile_interval_seconds)
    try:
        while not stop.is_set():
            try:
                reconcile(settings, pool, storage, client, lambda doc, task: send_ingest(celery, doc, task))
            except UNAVAILABLE as error:
                log.warning("reconcile.unavailable", error=str(error))
            if settings.reconciler_heartbeat_file:
                _touch(settings.reconciler_heartbeat_file)
            stop.wait(settings.reconcile_interval_seconds)
    finally:
        pool.close()
        celery.close()
        log.info("reconcile.stopped")


def _touch(path: Path) -> None:
    """Tells a health check the loop is turning (its mtime is the last pass)."""
    path.write_text(f"{time.time()}\n")


if __name__ == "__main__":
    main()
