"""Requests per second, counted in Redis so every API process shares one count.

A fixed one-second window per tenant (`chute:rate:t:<tenant>:<second>`) and, for traffic without a
valid key, per client address (`chute:rate:a:<address>:<second>`): one INCR and one EXPIRE in a single
round trip. Past the limit the answer is 429 with `Retry-After`. If Redis does not answer, requests are
let through (and logged): the limiter protects the API, it must not be the reason it is down.
"""

from __future__ import annotations

import time

import redis
import redis.asyncio
import structlog

from shared.errors import TooManyRequests

log = structlog.get_logger("chute.api")


async def check_rate(client: redis.asyncio.Redis, scope: str, limit: int) -> None:
    """Count one request against `scope`'s window; 429 past `limit` per second (0: unlimited)."""
    if limit <= 0:
        return
    key = f"chute:rate:{scope}:{int(time.time())}"
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2)
            count, _ = await pipe.execute()
    except redis.RedisError as error:
        log.warning("api.rate_limit.unavailable", error=str(error))
        return
    if int(count) > limit:
        raise TooManyRequests(f"More than {limit} requests per second; slow down.", retry_after=1)
