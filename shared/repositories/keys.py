"""Tenants and their API keys, stored as sha256 hashes; each with an optional label and expiry."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from shared.db import Connection, ReadPool, fetch_all, read_one
from shared.rows import HashedKeyRow, KeyRow, LiveKey

KEY_PREFIX = "chute_"
# What a listing shows of a key: never its hash.
_LISTED = "id, tenant_id, prefix, label, created_at, expires_at, revoked_at"


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_tenant(conn: Connection, tenant_id: str) -> None:
    conn.execute("INSERT INTO tenants (id) VALUES (%s) ON CONFLICT DO NOTHING", (tenant_id,))


def create_key(
    conn: Connection, tenant_id: str, *, label: str | None = None, expires_at: datetime | None = None
) -> str:
    """Make a new key for a tenant (creating the tenant if needed) and return it, once."""
    ensure_tenant(conn, tenant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (tenant_id, key_hash, prefix, label, expires_at) VALUES (%s, %s, %s, %s, %s)",
        (tenant_id, hash_key(key), key[:12], label, expires_at),
    )
    return key


def list_keys(conn: Connection, tenant_id: str | None = None) -> list[KeyRow]:
    """Every key (or one tenant's), oldest first."""
    return fetch_all(
        conn,
        KeyRow,
        f"SELECT {_LISTED} FROM api_keys WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s"
        " ORDER BY created_at, id",
        {"tenant": tenant_id},
    )


def find_key(conn: Connection, id_or_prefix: str) -> list[HashedKeyRow]:
    """The keys whose id or listed prefix is `id_or_prefix` (more than one: the prefix is ambiguous)."""
    try:
        key_id: uuid.UUID | None = uuid.UUID(id_or_prefix)
    except ValueError:
        key_id = None
    return fetch_all(
        conn,
        HashedKeyRow,
        f"SELECT {_LISTED}, key_hash FROM api_keys WHERE id = %s OR prefix = %s FOR UPDATE",
        (key_id, id_or_prefix),
    )


def revoke_key(conn: Connection, key_id: uuid.UUID) -> None:
    conn.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s", (key_id,))


async def tenant_for_key_hash(reads: ReadPool, key_hash: str) -> LiveKey | None:
    """The tenant and expiry of a key that is neither revoked nor expired."""
    return await read_one(
        reads,
        LiveKey,
        "SELECT tenant_id, expires_at FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now())",
        (key_hash,),
    )
