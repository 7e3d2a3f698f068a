"""Live streams of one API process: a single Redis subscription shared by all of them, and their caps.

The hub subscribes once to every document's change notices and to key revocations. Each open stream
registers a `Stream` and waits on its `changed` event instead of holding a Redis connection or polling
Postgres; a revoked key closes its streams at once. Streams are capped per tenant and per process
(429 `too_many_streams`). If the subscription drops, the hub reconnects and wakes every stream, so
each re-reads its document: a lost notice delays an update, it never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
import redis.asyncio
import structlog

from shared.change_notices import CHANNEL_PREFIX, KEYS_REVOKED_CHANNEL
from shared.errors import ErrorCode, TooManyRequests

log = structlog.get_logger("chute.api")

RECONNECT_SECONDS = 1.0


@dataclass(eq=False)
class Stream:
    tenant: str
    key_hash: str
    document_id: str
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    revoked: bool = False


class LiveHub:
    def __init__(self, client: redis.asyncio.Redis, *, per_tenant: int, per_process: int) -> None:
        self.client = client
        self.per_tenant = per_tenant
        self.per_process = per_process
        self.by_document: defaultdict[str, set[Stream]] = defaultdict(set)
        self.by_key: defaultdict[str, set[Stream]] = defaultdict(set)
        self.tenants: Counter[str] = Counter()
        self.on_revoked: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return sum(self.tenants.values())

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def open(self, tenant: str, key_hash: str, document_id: str) -> Stream:
        """Register a stream, or 429 when its tenant or this process has as many as allowed."""
        if self.tenants[tenant] >= self.per_tenant:
            raise TooManyRequests(
                f"This tenant already has {self.per_tenant} live streams open; close some first.",
                code=ErrorCode.TOO_MANY_STREAMS,
                retry_after=5,
            )
        if self.open_streams >= self.per_process:
            raise TooManyRequests(
                "This server has as many live streams as it serves; poll the document instead.",
                code=ErrorCode.TOO_MANY_STREAMS,
                retry_after=5,
            )
        stream = Stream(tenant, key_hash, document_id)
        self.by_document[document_id].add(stream)
        self.by_key[key_hash].add(stream)
        self.tenants[tenant] += 1
        return stream

    def close(self, stream: Stream) -> None:
        """Unregister a stream; closing one twice is harmless."""
        if stream not in self.by_document.get(stream.document_id, ()):
            return
        self._discard(self.by_document, stream.document_id, stream)
        self._discard(self.by_key, stream.key_hash, stream)
        self.tenants[stream.tenant] -= 1
        if self.tenants[stream.tenant] <= 0:
            del self.tenants[stream.tenant]

    @staticmethod
    def _discard(index: defaultdict[str, set[Stream]], name: str, stream: Stream) -> None:
        index[name].discard(stream)
        if not index[name]:
            del index[name]

    def revoke(self, key_hash: str) -> None:
        """A key was revoked: its streams end, and whoever else cares (the key cache) is told."""
        for callback in self.on_revoked:
            callback(key_hash)
        for stream in self.by_key.get(key_hash, ()):
            stream.revoked = True
            stream.changed.set()

    async def _listen(self) -> None:
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                await pubsub.subscribe(KEYS_REVOKED_CHANNEL)
                self._wake_all()  # anything missed while (re)connecting is read again
                async for message in pubsub.listen():
                    self._dispatch(message)
            except (redis.RedisError, OSError) as error:
                log.warning("api.live.reconnecting", error=str(error))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_SECONDS)

    def _dispatch(self, message: dict[str, object]) -> None:
        kind, channel, data = message.get("type"), message.get("channel"), message.get("data")
        if kind not in ("message", "pmessage") or not isinstance(channel, bytes):
            return
        name = channel.decode()
        if name == KEYS_REVOKED_CHANNEL and isinstance(data, bytes):
            self.revoke(data.decode())
        elif name.startswith(CHANNEL_PREFIX):
            for stream in self.by_document.get(name.removeprefix(CHANNEL_PREFIX), ()):
                stream.changed.set()

    def _wake_all(self) -> None:
        for streams in self.by_document.values():
            for stream in streams:
                stream.changed.set()
