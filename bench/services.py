"""The real stack for benchmarks: Postgres+pgvector, Redis and S3 started once per run on free ports;
the API and workers started and stopped by each benchmark with the settings it measures."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from infra.stack import Ports, Stack, wait_until

# The worker's logs are JSON lines when not on a terminal; stage timings come from them.
# The load benchmarks drive one tenant far past the production rate limit and upload quota: limits
# high enough never to trip, but still counted, so the figures include what the limiter costs.
_QUIET = {
    "CHUTE_LEASE_SECONDS": "120",
    "CHUTE_RATE_LIMIT_PER_SECOND": "1000000",
    "CHUTE_TENANT_MAX_PENDING_UPLOADS": "1000000",
}


class Services:
    """Starts the backing services on first use; `close()` stops every process it started."""

    def __init__(self, root: Path, settings: dict[str, str] | None = None, **stack_options: Any) -> None:
        """`settings` (CHUTE_* variables) go to every process; `stack_options` to `Stack` (say the
        addresses of worker hosts, `infra.hosts.listen_options`)."""
        self.root = root
        self.settings = {**_QUIET, **(settings or {})}
        self.stack_options = stack_options
        self._stack: Stack | None = None
        self._warm_up_key: str | None = None

    @property
    def stack(self) -> Stack:
        if self._stack is None:
            stack = Stack(self.root, Ports.free(), extra_env=dict(self.settings), **self.stack_options)
            self._stack = stack
            stack.start_services()
        return self._stack

    def close(self) -> None:
        if self._stack is not None:
            self._stack.stop_all()

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    def create_key(self, tenant: str | None = None) -> tuple[str, str]:
        """A new tenant and its API key: (tenant, key)."""
        tenant = tenant or f"bench-{uuid.uuid4().hex[:10]}"
        return tenant, self.stack.create_key(tenant)

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.stack.database_url, autocommit=True)

    @contextmanager
    def api(self, env: dict[str, str] | None = None) -> Iterator[psutil.Process]:
        """The Chute API running with `env` added, its query model loaded; yields its process for memory
        sampling. (The API loads the model in a background thread at start; a search waits for it, so
        no benchmark measures that load.)"""
        self.stack.start_api(env=env)
        try:
            if self._warm_up_key is None:
                self._warm_up_key = self.create_key()[1]
            httpx.post(
                f"{self.api_url}/v1/search",
                json={"query": "warm-up", "k": 1},
                headers={"Authorization": f"Bearer {self._warm_up_key}"},
                timeout=300,
            ).raise_for_status()
            yield psutil.Process(self.stack.processes["api"].pid)
        finally:
            self.stack.stop("api")

    @contextmanager
    def workers(
        self, name: str, env: dict[str, str] | None = None, *, netns: str | None = None
    ) -> Iterator[Path]:
        """A Celery worker with `env` added (CHUTE_WORKER_CONCURRENCY sets its processes), in the
        network namespace `netns` if given (a host of its own: `Stack.start_worker`).

        Yields its log file (stage timings are read from it); waits until it consumes the queue.
        """
        stack = self.stack
        log = stack.root / "logs" / f"{name}.log"
        log.unlink(missing_ok=True)
        process = stack.start_worker(name, env=env, netns=netns)
        try:
            wait_until(lambda: b"ready." in log.read_bytes(), f"worker {name}", timeout=90, process=process)
            yield log
        finally:
            # SIGINT is Celery's warm shutdown: an idle worker leaves at once (SIGTERM is remapped to
            # the soft shutdown, which waits its full minute even when idle).
            stack.stop(name, sig=signal.SIGINT, timeout=60)


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
