"""Key lifecycle and bounded live streams: `chute keys` lists, revokes and rotates keys with labels and
expiry; a revocation stops the key on the API at once and ends its open streams; streams are capped per
tenant and share one Redis subscription per API process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import psycopg
import redis

from infra.stack import Stack
from tests.hardening.conftest import ExtraApi


def keys_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", *args],
        env={**os.environ, **stack.env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def watching(url: str, key: str, document_id: str) -> Iterator[list[str]]:
    """A live stream read in a thread; yields the event names seen so far, joined at exit."""
    names: list[str] = []
    opened = threading.Event()

    def read() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream(
            "GET", f"{url}/v1/documents/{document_id}/events", headers=headers, timeout=60
        ) as s:
            for line in s.iter_lines():
                if line.startswith("event: "):
                    names.append(line.removeprefix("event: "))
                    opened.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(30), "the stream never sent its first event"
    yield names
    reader.join(timeout=30)
    assert not reader.is_alive(), f"the stream stayed open: {names}"


def presign(url: str, key: str) -> str:
    answer = httpx.post(
        f"{url}/v1/uploads",
        json={"filename": "watched.txt", "size": 10},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["document_id"])


def prefix_of(key: str) -> str:
    return key[:12]


def test_keys_are_listed_with_label_and_expiry(stack: Stack) -> None:
    tenant = f"k-{uuid.uuid4().hex[:10]}"
    label = "nightly [bold]sync[/bold]"
    made = keys_cli(stack, "create", "--tenant", tenant, "--label", label, "--expires-in-days", "30")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]

    listed = keys_cli(stack, "list", "--tenant", tenant)

    assert listed.returncode == 0, listed.stderr
    assert prefix_of(key) in listed.stdout
    assert label in listed.stdout
    assert "active" in listed.stdout
    assert key not in listed.stdout  # only the prefix is ever shown again


def test_revoking_a_key_stops_it_at_once_and_ends_its_streams(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.ports.api}"
    key = stack.create_key(f"r-{uuid.uuid4().hex[:10]}")
    document_id = presign(url, key)  # awaits its upload: a stream on it stays open

    with watching(url, key, document_id) as names:
        revoked = keys_cli(stack, "revoke", prefix_of(key))
        assert revoked.returncode == 0, revoked.stderr
        # No cache window: the very next request is refused.
        after = httpx.get(f"{url}/v1/documents", headers={"Authorization": f"Bearer {key}"})

    assert after.status_code == 401
    assert names[-1] == "revoked"
    assert "revoked" in keys_cli(stack, "list").stdout


def test_rotating_a_key_replaces_it(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.ports.api}"
    tenant = f"q-{uuid.uuid4().hex[:10]}"
    old = stack.create_key(tenant)
    assert httpx.get(f"{url}/v1/documents", headers={"Authorization": f"Bearer {old}"}).status_code == 200

    rotated = keys_cli(stack, "rotate", prefix_of(old))

    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert httpx.get(f"{url}/v1/documents", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert httpx.get(f"{url}/v1/documents", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert keys_cli(stack, "rotate", prefix_of(old)).returncode == 1  # revoked already


def test_an_expired_key_is_refused(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.ports.api}"
    key = stack.create_key(f"e-{uuid.uuid4().hex[:10]}")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE prefix = %s",
            (prefix_of(key),),
        )

    answer = httpx.get(f"{url}/v1/documents", headers={"Authorization": f"Bearer {key}"})

    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert "expired" in keys_cli(stack, "list").stdout


def test_streams_are_capped_per_tenant_and_share_one_subscription(
    stack: Stack, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    api = extra_api({"CHUTE_SSE_MAX_STREAMS_PER_TENANT": "3"})
    key = stack.create_key(f"s-{uuid.uuid4().hex[:10]}")
    documents = [presign(api.url, key) for _ in range(3)]
    redis_client = redis.Redis.from_url(stack.env["CHUTE_REDIS_URL"])

    auth = {"Authorization": f"Bearer {key}"}

    def subscribed_connections() -> int:
        return sum(1 for c in redis_client.client_list() if int(c["psub"]) or int(c["sub"]))

    before = subscribed_connections()
    with (
        watching(api.url, key, documents[0]),
        watching(api.url, key, documents[1]),
        watching(api.url, key, documents[2]),
    ):
        during = subscribed_connections()
        fourth = httpx.get(f"{api.url}/v1/documents/{documents[0]}/events", headers=auth)
        for document_id in documents:  # ends the streams: the documents are gone
            httpx.delete(f"{api.url}/v1/documents/{document_id}", headers=auth)

    assert during == before
    assert fourth.status_code == 429
    assert fourth.json()["error"] == "too_many_streams"
    assert "Retry-After" in fourth.headers
