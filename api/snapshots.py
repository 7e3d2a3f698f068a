"""A value computed at most once per interval, so a flood of /ready or /metrics requests costs the
dependencies one check per interval, not one per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: T | None = None
        self._taken = -float("inf")

    def get(self, compute: Callable[[], T]) -> T:
        """The last value if younger than `seconds`, else `compute()`'s (one caller computes at a time;
        the others wait for it and share its answer)."""
        with self._lock:
            if self._value is None or time.monotonic() - self._taken >= self.seconds:
                self._value = compute()
                self._taken = time.monotonic()
            return self._value
