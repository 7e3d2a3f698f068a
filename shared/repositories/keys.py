"""Tenants and their API keys, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from shared.db import Connection, ReadPool, read_one

KEY_PREFIX = "chute_"


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_tenant(conn: Connection, tenant_id: str) -> None:
    conn.execute("INSERT INTO tenants (id) VALUES (%s) ON CONFLICT DO NOTHING", (tenant_id,))


def create_key(conn: Connection, tenant_id: str) -> str:
    """Make a new key for a tenant (creating the tenant if needed) and return it, once."""
    ensure_tenant(conn, tenant_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_keys (tenant_id, key_hash, prefix) VALUES (%s, %s, %s)",
        (tenant_id, hash_key(key), key[:12]),
    )
    return key


async def tenant_for_key_hash(reads: ReadPool, key_hash: str) -> str | None:
    row = await read_one(
        reads, "SELECT tenant_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", (key_hash,)
    )
    return str(row["tenant_id"]) if row else None
