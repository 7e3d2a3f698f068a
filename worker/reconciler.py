"""The reconciler: Postgres is the truth, so it can find and repair what the queue lost.

`python -m worker.reconciler` runs `reconcile` every interval, in a process of its own, so repairs
never wait behind documents in the ingestion queue. Run one (or more: a Redis lock keeps two passes
from overlapping); it survives its dependencies going away. Every repair is a conditional update
under `FOR UPDATE SKIP LOCKED` (the SQL is shared/repositories/documents.py's), so nothing is queued
twice. It repairs:
- `processing` documents whose lease ran out (worker killed, host gone): queued again;
- `queued` documents whose message Redis no longer holds (restarted without persistence): sent again;
- uploads whose object arrived without a complete call: checked and queued like complete;
- uploads never completed before their URL expired: `expired`, with the parts or object removed.
A recovered document's next claim counts an attempt; past the maximum it fails `too_many_attempts`.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import kombu.exceptions
import psycopg
import redis
import structlog
from celery import Celery
from psycopg_pool import ConnectionPool

from shared.db import Connection, open_pool, transaction
from shared.logging import configure_logging
from shared.queue import make_celery
from shared.queue_inspection import queue_depth, tasks_in_broker
from shared.repositories import documents
from shared.services.ingest_tasks import IngestTask, send_ingest_tasks
from shared.services.uploads import verify_and_queue
from shared.settings import Settings, get_settings
from shared.storage import Storage, StorageError

log = structlog.get_logger("chute.reconcile")

LOCK_KEY = "chute:reconcile:lock"
BATCH = 200

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
                reconcile(settings, pool, storage, client, celery)
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


@dataclass
class Repairs:
    requeued_stale: list[str] = field(default_factory=list)
    resent_lost: list[str] = field(default_factory=list)
    picked_up: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    skipped: bool = False


def reconcile(
    settings: Settings, pool: ConnectionPool, storage: Storage, client: redis.Redis, celery: Celery
) -> Repairs:
    """One pass: each kind of repair in a transaction of its own; the tasks sent once all committed."""
    repairs = Repairs()
    lock = client.lock(LOCK_KEY, timeout=max(60, int(settings.reconcile_interval_seconds * 4)))
    if not lock.acquire(blocking=False):
        repairs.skipped = True
        return repairs
    try:
        with transaction(pool) as conn:
            tasks = _requeue_stale(conn, repairs)
        with transaction(pool) as conn:
            tasks += _resend_lost(conn, settings, client, repairs)
        with transaction(pool) as conn:
            tasks += _pick_up_uploads(conn, settings, storage, repairs)
        send_ingest_tasks(celery, tasks)
    finally:
        lock.release()
    if any((repairs.requeued_stale, repairs.resent_lost, repairs.picked_up, repairs.expired)):
        log.info(
            "reconcile.repaired",
            requeued_stale=repairs.requeued_stale,
            resent_lost=repairs.resent_lost,
            picked_up=repairs.picked_up,
            expired=repairs.expired,
        )
    return repairs


def _requeue_stale(conn: Connection, repairs: Repairs) -> list[IngestTask]:
    tasks = []
    for row in documents.stale_processing(conn, BATCH):
        queued = documents.requeue(conn, row.id)
        if queued is not None:
            tasks.append(IngestTask.of(queued))
            repairs.requeued_stale.append(str(row.id))
    return tasks


def _resend_lost(
    conn: Connection, settings: Settings, client: redis.Redis, repairs: Repairs
) -> list[IngestTask]:
    tasks: list[IngestTask] = []
    waiting = documents.long_queued(conn, settings.queued_grace_seconds, BATCH)
    if not waiting:
        return []
    in_broker = tasks_in_broker(client, delivered_within=settings.queued_grace_seconds)
    # A message is a ticket: a worker takes the fairest queued document, not necessarily the one
    # the message names. A document whose own message was spent on another is not lost as long
    # as as many messages wait in the queue as documents are queued. (Messages delivered but not
    # yet claimed are not counted: the worst that costs is a spare ticket, which claims nothing.)
    missing = documents.queued_count(conn) - queue_depth(client)
    for row in waiting:
        if missing <= 0:
            break
        if str(row.task_id) in in_broker:
            continue  # still on its way: just a long queue
        missing -= 1
        queued = documents.requeue(conn, row.id)  # restarts the grace period
        if queued is not None:
            tasks.append(IngestTask.of(queued))
            repairs.resent_lost.append(str(row.id))
    return tasks


def _pick_up_uploads(
    conn: Connection, settings: Settings, storage: Storage, repairs: Repairs
) -> list[IngestTask]:
    tasks: list[IngestTask] = []
    now = datetime.now(UTC)
    for row in documents.waiting_uploads(conn, settings.upload_grace_seconds, BATCH):
        if row.upload_expires_at is not None and row.upload_expires_at < now:
            if row.upload_id:
                storage.abort_multipart(row.object_key, row.upload_id)
            storage.delete(row.object_key)
            documents.mark_expired(conn, row.id)
            repairs.expired.append(str(row.id))
        elif not row.upload_id and storage.head(row.object_key) is not None:
            completion = verify_and_queue(conn, storage, settings, row)
            if completion.tasks:
                tasks += completion.tasks
                repairs.picked_up.append(str(row.id))
    return tasks


if __name__ == "__main__":
    main()
