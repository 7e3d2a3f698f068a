"""A pause shared by every worker on every host, through Redis: when the embedding provider answers
429, nobody sends it anything until its Retry-After has passed, so many workers do not stampede it."""

from __future__ import annotations

import contextlib
import time

import redis

PAUSE_KEY = "chute:embedding:paused-until"
MAX_PAUSE_SECONDS = 300.0


class SharedPause:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def wait(self) -> None:
        """Sleep while a pause is in force (at most MAX_PAUSE_SECONDS); Redis down means no pause."""
        try:
            until = self.client.get(PAUSE_KEY)
        except redis.RedisError:
            return
        if until is not None:
            remaining = float(until) - time.time()
            if remaining > 0:
                time.sleep(min(remaining, MAX_PAUSE_SECONDS))

    def pause(self, seconds: float) -> None:
        """Ask every worker to wait `seconds` from now (a longer pause already set is kept)."""
        seconds = min(max(seconds, 0.0), MAX_PAUSE_SECONDS)
        until = time.time() + seconds
        # Redis down: no shared pause; the worker that was refused still waits itself.
        with contextlib.suppress(redis.RedisError):
            # Only ever move the end of the pause later: GET and SET in a small Lua script.
            self.client.eval(
                "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') "
                "if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end",
                1,
                PAUSE_KEY,
                repr(until),
                int(seconds * 1000) + 1000,
            )
