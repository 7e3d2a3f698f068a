"""Postgres access: connection pools, the unit of work, and the SQL migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from shared.errors import AppError
from shared.settings import Settings

Connection = psycopg.Connection[dict[str, Any]]
AsyncConnection = psycopg.AsyncConnection[dict[str, Any]]
ReadPool = AsyncConnectionPool[AsyncConnection]
T = TypeVar("T")


def _configure(conn: psycopg.Connection[Any]) -> None:
    register_vector(conn)


def _timeout_option(statement_timeout_ms: int | None) -> dict[str, str]:
    """Connection options making Postgres cancel any statement running past the limit (lock waits
    included), so one expensive query cannot hold a pooled connection for long."""
    return {"options": f"-c statement_timeout={int(statement_timeout_ms)}"} if statement_timeout_ms else {}


def open_pool(
    settings: Settings,
    *,
    min_size: int = 1,
    max_size: int | None = None,
    statement_timeout_ms: int | None = None,
) -> ConnectionPool:
    """A pool of autocommit-off connections returning rows as dicts (repositories ask for typed rows
    instead: `fetch_one`, `fetch_all`).

    Workers call this once per process after fork; the API once at start-up, with a statement timeout.
    """
    pool: ConnectionPool = ConnectionPool(
        settings.database_url,
        min_size=min_size,
        max_size=max_size or settings.db_pool_size,
        kwargs={"row_factory": dict_row, **_timeout_option(statement_timeout_ms)},
        configure=_configure,
        check=ConnectionPool.check_connection,
        open=False,
        name="chute",
    )
    pool.open()
    return pool


# How long a read waits for a connection before the API answers 503 (Postgres down, or the pool
# busy): a client polling a status would rather retry than hang.
READ_WAIT_SECONDS = 5.0


async def open_read_pool(settings: Settings, *, max_size: int | None = None) -> ReadPool:
    """A pool of autocommit connections for the API's hot single-statement reads (a document's status,
    an API key), served on the event loop: one round trip each, no thread hand-off. Its statements
    have the API's statement timeout."""
    pool: ReadPool = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=max_size or settings.db_pool_size,
        kwargs={
            "row_factory": dict_row,
            "autocommit": True,
            **_timeout_option(settings.api_statement_timeout_ms),
        },
        timeout=READ_WAIT_SECONDS,
        # While Postgres is down the pool retries connecting with a delay that doubles each time; a
        # short give-up keeps that delay from outliving the outage, so the first read after it
        # connects at once instead of answering 503 until the next retry.
        reconnect_timeout=READ_WAIT_SECONDS / 2,
        open=False,
        name="chute-reads",
    )
    await pool.open()
    return pool


async def read_one(pool: ReadPool, row_type: type[T], query: str | sql.Composed, params: Params) -> T | None:
    """The first row of one read-only statement, as a `row_type` (a dataclass, one field per column).

    Connections are not checked before use (that would double the round trips). One that died idle
    in the pool, as all do when Postgres restarts, fails here: the pool then drops every dead one and
    the read is tried once more. No connection in time (PoolTimeout) and a statement cancelled by
    its timeout (QueryCanceled) are not retried.
    """
    try:
        return await _read_one(pool, row_type, query, params)
    except (PoolTimeout, psycopg.errors.QueryCanceled):
        raise
    except psycopg.OperationalError:
        await pool.check()
    return await _read_one(pool, row_type, query, params)


async def _read_one(pool: ReadPool, row_type: type[T], query: str | sql.Composed, params: Params) -> T | None:
    async with pool.connection() as conn:
        cursor = conn.cursor(row_factory=class_row(row_type))
        return await (await cursor.execute(query, params)).fetchone()


def fetch_one(
    conn: Connection, row_type: type[T], query: str | sql.Composed, params: Params = ()
) -> T | None:
    """The first row of `query`, as a `row_type` (a dataclass, one field per column), or None."""
    return conn.cursor(row_factory=class_row(row_type)).execute(query, params).fetchone()


def fetch_all(conn: Connection, row_type: type[T], query: str | sql.Composed, params: Params = ()) -> list[T]:
    """Every row of `query`, as `row_type`s."""
    return conn.cursor(row_factory=class_row(row_type)).execute(query, params).fetchall()


@contextmanager
def transaction(pool: ConnectionPool) -> Iterator[Connection]:
    """One unit of work: commits when the block ends, rolls back if it raises."""
    with pool.connection() as conn, conn.transaction():
        yield conn  # type: ignore[misc]


# -- migrations -------------------------------------------------------------------------------


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("shared") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def migrate(settings: Settings) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction. Returns their names.

    Safe to run concurrently from several processes: an advisory lock serialises them.
    """
    applied: list[str] = []
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(72657)")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, text in _migration_files():
                if version in done:
                    continue
                # Only the embedding dimension (an int from settings) is substituted.
                statement = text.replace("{embedding_dimensions}", str(int(settings.embedding_dimensions)))
                with conn.transaction():
                    conn.execute(sql.SQL(statement))
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(72657)")
    check_embedding_dimensions(settings)
    return applied


def check_embedding_dimensions(settings: Settings) -> None:
    """Refuse to run when the configured model's dimension differs from the stored vectors'."""
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        ).fetchone()
    stored = row[0] if row else None
    if stored is not None and stored != settings.embedding_dimensions:
        raise AppError(
            f"The database stores {stored}-dimensional vectors but CHUTE_EMBEDDING_DIMENSIONS is "
            f"{settings.embedding_dimensions}. Use a model with {stored} dimensions or a new database.",
            code="embedding_dimensions_mismatch",
            status=500,
        )
