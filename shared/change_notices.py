"""Document change notices over Redis pub/sub.

A notice only says "this document changed": whoever listens re-reads the row from Postgres, the
source of truth. A lost notice therefore delays an update, it never loses one.
"""

from __future__ import annotations

import contextlib
import uuid

import redis

CHANNEL_PREFIX = "chute:document:"


def channel_for(document_id: uuid.UUID | str) -> str:
    return f"{CHANNEL_PREFIX}{document_id}"


def publish_change(client: redis.Redis, document_id: uuid.UUID | str) -> None:
    # Listeners also re-read the row on a timer, so a notice lost to a Redis hiccup only delays.
    with contextlib.suppress(redis.RedisError):
        client.publish(channel_for(document_id), "changed")


# Key revocations: every API process drops the key from its cache and closes its open streams.
KEYS_REVOKED_CHANNEL = "chute:keys:revoked"


def publish_key_revoked(client: redis.Redis, key_hash: str) -> None:
    """Tell every API process at once; one that misses it stops accepting the key within
    `api_key_cache_seconds`, when its cache entry runs out."""
    with contextlib.suppress(redis.RedisError):
        client.publish(KEYS_REVOKED_CHANNEL, key_hash)
