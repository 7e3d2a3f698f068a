"""`chute keys create|list|revoke|rotate`: API keys, administered with the server's CHUTE_* settings
(or, in the project directory, the local stack's: `cli.local_stack`).

A revocation is published on Redis after it commits, so every API process refuses the key at once and
closes its open streams.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from shared.db import Connection
    from shared.rows import KeyRow
    from shared.settings import Settings

keys_app = typer.Typer(help="API keys.", no_args_is_help=True)

TENANT_HELP = "Tenant name: lowercase letters, digits, - and _."
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KeyArgument = Annotated[str, typer.Argument(help="The key's id or prefix, as `keys list` shows.")]
ExpiresOption = Annotated[
    int | None, typer.Option("--expires-in-days", min=1, help="The key stops working after this many days.")
]


@contextmanager
def _transaction(settings: Settings) -> Iterator[Connection]:
    """One transaction on a one-connection pool, closed after; a refusal (`AppError`) exits 1 with
    its message."""
    from shared.db import open_pool, transaction
    from shared.errors import AppError

    pool = open_pool(settings, min_size=1, max_size=1)
    try:
        with transaction(pool) as conn:
            yield conn
    except AppError as error:
        raise _failed(error) from None
    finally:
        pool.close()


def _expiry(days: int | None) -> datetime | None:
    return datetime.now(UTC) + timedelta(days=days) if days else None


def _publish_revoked(settings: Settings, key_hash: str) -> None:
    import redis

    from shared.change_notices import publish_key_revoked

    publish_key_revoked(redis.Redis.from_url(settings.redis_url, socket_timeout=5), key_hash)


def _failed(error: Exception) -> typer.Exit:
    from cli.render import plain

    typer.echo(f"error: {plain(getattr(error, 'message', error))}", err=True)
    return typer.Exit(1)


@keys_app.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help=TENANT_HELP)],
    label: Annotated[str | None, typer.Option(help="What the key is for, shown by `keys list`.")] = None,
    expires_in_days: ExpiresOption = None,
) -> None:
    """Create an API key for a tenant (the tenant is created if new). The key is printed once, last."""
    from cli.local_stack import server_settings
    from shared.repositories import keys

    if not TENANT_PATTERN.match(tenant):
        raise typer.BadParameter(
            "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    with _transaction(server_settings()) as conn:
        key = keys.create_key(conn, tenant, label=label, expires_at=_expiry(expires_in_days))
    typer.echo(f"Created an API key for tenant '{tenant}'. It is shown only this once:")
    typer.echo(key)


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """Every key (or one tenant's): id, prefix, label, and whether it is active, expired or revoked."""
    from cli.local_stack import server_settings
    from cli.render import cell, stdout_console
    from shared.repositories import keys

    with _transaction(server_settings()) as conn:
        rows = keys.list_keys(conn, tenant)
    from rich.table import Table

    table = Table(header_style="bold")
    for column in ("Id", "Tenant", "Prefix", "Label", "Created", "Expires", "State"):
        table.add_column(column, no_wrap=column != "Label")
    for row in rows:
        table.add_row(
            str(row.id),
            cell(row.tenant_id),
            cell(row.prefix),
            cell(row.label or "-"),
            _day(row.created_at),
            _day(row.expires_at),
            _state(row),
        )
    stdout_console().print(table)


def _day(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _state(row: KeyRow) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"


@keys_app.command("revoke")
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key's id or prefix, as `keys list` shows.")],
) -> None:
    """Revoke a key: every API process refuses it at once and closes its open streams."""
    from cli.local_stack import server_settings
    from shared.services import api_keys

    settings = server_settings()
    with _transaction(settings) as conn:
        row = api_keys.revoke(conn, key)
    _publish_revoked(settings, row.key_hash)
    typer.echo(f"Revoked key {row.prefix}… of tenant '{row.tenant_id}'.")


@keys_app.command("rotate")
def rotate_key(
    key: KeyArgument,
    expires_in_days: ExpiresOption = None,
) -> None:
    """Replace a key: a new one (same tenant and label) is printed once, last; the old one is revoked."""
    from cli.local_stack import server_settings
    from shared.services import api_keys

    settings = server_settings()
    with _transaction(settings) as conn:
        new_key, old = api_keys.rotate(conn, key, _expiry(expires_in_days))
    _publish_revoked(settings, old.key_hash)
    typer.echo(f"Revoked key {old.prefix}… of tenant '{old.tenant_id}'. Its replacement, shown once:")
    typer.echo(new_key)
