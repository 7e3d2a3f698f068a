"""What waits in the broker: reads kombu's Redis layout for the ingestion queue (its depth, the ids
of the tasks on their way). The names of that layout come from kombu's Redis transport itself, so a
kombu that changes them changes them here too.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from shared.queue import INGEST_QUEUE


def _priority_queues(queue: str) -> list[str]:
    """The Redis lists kombu keeps for `queue`: one per priority step, the lowest under the queue's
    own name (kombu's `Channel._q_for_pri`)."""
    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


_INGEST_LISTS = _priority_queues(INGEST_QUEUE)


def queue_depth(client: redis.Redis) -> int:
    """Messages waiting in the ingestion queue (not counting those delivered to workers)."""
    return sum(int(client.llen(queue)) for queue in _INGEST_LISTS)


def tasks_in_broker(client: redis.Redis, delivered_within: float) -> set[str]:
    """Ids of the ingestion tasks on their way: waiting in the queue, or delivered to a worker less
    than `delivered_within` seconds ago and not acked yet.

    Reads the queue's lists (one per priority step), kombu's `unacked` hash and its `unacked_index` of
    delivery times. An older delivery of a still-queued document belonged to a worker that died before
    claiming it; kombu would restore it only after the visibility timeout.
    """
    ids: set[str] = set()
    for queue in _INGEST_LISTS:
        for raw in client.lrange(queue, 0, -1):
            ids.add(_task_id(json.loads(raw)))
    since = time.time() - delivered_within
    recent = cast(list[bytes], client.zrangebyscore(Channel.unacked_index_key, since, "+inf"))
    if recent:
        for message in client.hmget(Channel.unacked_key, recent):
            if message is not None:  # acked between the two reads
                ids.add(_task_id(json.loads(message)[0]))
    ids.discard("")
    return ids


def _task_id(message: dict[str, Any]) -> str:
    return str(message.get("headers", {}).get("id", ""))
