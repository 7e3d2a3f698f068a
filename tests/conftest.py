"""The real stack for the test suite: Postgres+pgvector, Redis, SeaweedFS's S3 server, the API and a
Celery worker, each a real process on a free port, started once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.stack import Ports, Stack, free_port
from shared.pipeline.environment import configure_library_environment
from tests.helpers import Bucket, ChuteClient

# Unit tests extract and embed in this process: the switches a worker sets at start, set here too.
configure_library_environment()

MiB = 1024 * 1024
EVENTS_TOKEN = "test-events-token"
# Small multipart sizes so tests exercise multipart uploads without shipping 64 MiB around.
MULTIPART_THRESHOLD = 6 * MiB
MULTIPART_PART_SIZE = 5 * MiB
STACK_SETTINGS = {
    "CHUTE_LEASE_SECONDS": "30",
    "CHUTE_RECONCILE_INTERVAL_SECONDS": "2",
    "CHUTE_QUEUED_GRACE_SECONDS": "5",
    "CHUTE_UPLOAD_GRACE_SECONDS": "3",
    "CHUTE_EVENTS_TOKEN": EVENTS_TOKEN,
    "CHUTE_MULTIPART_THRESHOLD": str(MULTIPART_THRESHOLD),
    "CHUTE_MULTIPART_PART_SIZE": str(MULTIPART_PART_SIZE),
    # One worker process, so tests can reason about order (fairness: at most the document in hand
    # finishes first). The default, one per core, is tests/unit/test_cores.py's.
    "CHUTE_WORKER_CONCURRENCY": "1",
}

WORKER_METRICS_PORT = free_port()

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Laid out as `make up` leaves a project: the stack in `<project>/.chute`, with its `env` file."""
    root = tmp_path_factory.mktemp("project") / ".chute"
    stack = Stack(root, Ports.free(), extra_env=STACK_SETTINGS)
    try:
        stack.start_services()
        stack.start_worker(env={"CHUTE_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT)})
        stack.start_reconciler()
        stack.start_api()
        stack.write_env_file()
        yield stack
    finally:
        stack.stop_all()
        if os.environ.get("CHUTE_TEST_KEEP_LOGS"):
            print(f"stack logs: {root / 'logs'}")


@pytest.fixture
def tenant_key(stack: Stack) -> str:
    """A fresh tenant per test: tenants are walls, so tests cannot see each other's documents."""
    return stack.create_key(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def client(stack: Stack, tenant_key: str) -> Iterator[ChuteClient]:
    with ChuteClient(stack.api_url, tenant_key) as chute:
        yield chute


@pytest.fixture
def other_client(stack: Stack) -> Iterator[ChuteClient]:
    with ChuteClient(stack.api_url, stack.create_key(f"o-{uuid.uuid4().hex[:12]}")) as chute:
        yield chute


@pytest.fixture
def bucket(stack: Stack) -> Bucket:
    return Bucket(stack.env)


@pytest.fixture
def anonymous(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        yield http
