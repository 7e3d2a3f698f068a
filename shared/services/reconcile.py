"""The reconciler: Postgres is the truth, so it can find and repair what the queue lost.

Run periodically by its own process (worker/reconciler.py); a Redis lock keeps two runs from
overlapping, and every repair is a conditional update under `FOR UPDATE SKIP LOCKED`, so nothing is
queued twice. It repairs:
- `processing` documents whose lease ran out (worker killed, host gone): queued again;
- `queued` documents whose message Redis no longer holds (restarted without persistence): sent again;
- uploads whose object arrived without a complete call: checked and queued like complete;
- uploads never completed before their URL expired: `expired`, with the parts or object removed.
A recovered document's next claim counts an attempt; past the maximum it fails `too_many_attempts`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
import structlog
from psycopg_pool import ConnectionPool

from shared.db import transaction
from shared.queue_inspection import queue_depth, tasks_in_broker
from shared.repositories import documents
from shared.services.uploads import verify_and_queue
from shared.settings import Settings
from shared.storage import Storage

log = structlog.get_logger("chute.reconcile")

LOCK_KEY = "chute:reconcile:lock"
BATCH = 200

SendTask = Callable[[uuid.UUID, uuid.UUID], None]


@dataclass
class Repairs:
    requeued_stale: list[str] = field(default_factory=list)
    resent_lost: list[str] = field(default_factory=list)
    picked_up: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    skipped: bool = False


def reconcile(
    settings: Settings, pool: ConnectionPool, storage: Storage, client: redis.Redis, send: SendTask
) -> Repairs:
    repairs = Repairs()
    lock = client.lock(LOCK_KEY, timeout=max(60, int(settings.reconcile_interval_seconds * 4)))
    if not lock.acquire(blocking=False):
        repairs.skipped = True
        return repairs
    try:
        to_send = _requeue_stale(pool, repairs)
        to_send += _resend_lost(settings, pool, client, repairs)
        to_send += _pick_up_uploads(settings, pool, storage, repairs)
        # Sent after the transactions committed, so a worker never sees a row that is not queued yet.
        for document_id, task_id in to_send:
            send(document_id, task_id)
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


def _requeue_stale(pool: ConnectionPool, repairs: Repairs) -> list[tuple[uuid.UUID, uuid.UUID]]:
    sends = []
    with transaction(pool) as conn:
        for row in documents.stale_processing(conn, BATCH):
            queued = documents.requeue(conn, row["id"])
            if queued is not None:
                sends.append((queued["id"], queued["task_id"]))
                repairs.requeued_stale.append(str(row["id"]))
    return sends


def _resend_lost(
    settings: Settings, pool: ConnectionPool, client: redis.Redis, repairs: Repairs
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    sends = []
    with transaction(pool) as conn:
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
            if str(row["task_id"]) in in_broker:
                continue  # still on its way: just a long queue
            missing -= 1
            queued = documents.requeue(conn, row["id"])  # restarts the grace period
            if queued is not None:
                sends.append((queued["id"], queued["task_id"]))
                repairs.resent_lost.append(str(row["id"]))
    return sends


def _pick_up_uploads(
    settings: Settings, pool: ConnectionPool, storage: Storage, repairs: Repairs
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    sends = []
    now = datetime.now(UTC)
    with transaction(pool) as conn:
        for row in documents.waiting_uploads(conn, settings.upload_grace_seconds, BATCH):
            if row["upload_expires_at"] is not None and row["upload_expires_at"] < now:
                if row["upload_id"]:
                    storage.abort_multipart(row["object_key"], row["upload_id"])
                storage.delete(row["object_key"])
                documents.mark_expired(conn, row["id"])
                repairs.expired.append(str(row["id"]))
            elif not row["upload_id"] and storage.head(row["object_key"]) is not None:
                completion = verify_and_queue(conn, storage, settings, row)
                if completion.newly_queued:
                    sends.append((row["id"], completion.document["task_id"]))
                    repairs.picked_up.append(str(row["id"]))
    return sends
