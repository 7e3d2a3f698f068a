"""The local stack is safe by default: its Postgres and Redis answer no client without the password
made at its first start (compose.yaml's secrets are checked in tests/unit/test_compose.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest
import redis

from infra.stack import Ports, Stack


def test_postgres_refuses_a_client_without_the_password(stack: Stack) -> None:
    without = stack.database_url.replace(f":{stack.passwords.postgres}@", "@")
    wrong = stack.database_url.replace(stack.passwords.postgres, "not-the-password")
    for url in (without, wrong):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(url, connect_timeout=5)
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_redis_refuses_a_client_without_the_password(stack: Stack) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=stack.ports.redis, socket_timeout=5).get("anything")
    assert redis.Redis.from_url(stack.env["CHUTE_REDIS_URL"], socket_timeout=5).ping()


def test_passwords_are_made_per_stack_and_kept_private(stack: Stack, tmp_path: Path) -> None:
    saved = stack.root / "secrets.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    other = Stack(tmp_path / "other")
    assert other.passwords.postgres != stack.passwords.postgres
    assert other.passwords.redis != stack.passwords.redis
    assert Stack(tmp_path / "other").passwords == other.passwords  # kept, not made again
    # Never on a command line that every local user can read.
    redis_config = stack.root / "redis" / "redis.conf"
    assert stat.S_IMODE(redis_config.stat().st_mode) == 0o600
    command_line = Path(f"/proc/{stack.processes['redis'].pid}/cmdline").read_bytes()
    assert stack.passwords.redis.encode() not in command_line


def test_a_cluster_from_before_passwords_gets_one(tmp_path: Path) -> None:
    """A `.chute/` made when the local stack trusted every local client is upgraded at the next start."""
    old = Stack(tmp_path / "old", Ports.free())
    old.start_postgres()
    with psycopg.connect(old.database_url, autocommit=True) as conn:
        conn.execute("ALTER ROLE postgres PASSWORD NULL")
    hba = old.root / "postgres" / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    old.stop("postgres")

    again = Stack(tmp_path / "old", old.ports)
    again.start_postgres()
    try:
        without = again.database_url.replace(f":{again.passwords.postgres}@", "@")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(without, connect_timeout=5)
        with psycopg.connect(again.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        again.stop("postgres")
