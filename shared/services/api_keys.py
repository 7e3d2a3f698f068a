"""API key lifecycle: create with a label and expiry, list, revoke, rotate (operators drive it with
`chute keys`; the caller publishes a revocation (shared.change_notices) once the transaction has committed),
and looking up whose key a request carries."""

from __future__ import annotations

from datetime import datetime

from shared.db import Connection, ReadPool
from shared.errors import AppError, ErrorCode, NotFound
from shared.repositories import keys
from shared.rows import HashedKeyRow, LiveKey

hash_key = keys.hash_key  # how a key is stored and looked up: never in clear


async def find_by_hash(reads: ReadPool, key_hash: str) -> LiveKey | None:
    """The tenant and expiry of the live (unrevoked, unexpired) key with this hash, or None."""
    return await keys.tenant_for_key_hash(reads, key_hash)


def find_one(conn: Connection, id_or_prefix: str) -> HashedKeyRow:
    """The key with this id or listed prefix, locked; 404 when none, 409 when the prefix is shared."""
    found = keys.find_key(conn, id_or_prefix)
    if not found:
        raise NotFound(f"No API key has the id or prefix '{id_or_prefix}'.")
    if len(found) > 1:
        raise AppError(
            f"{len(found)} keys share the prefix '{id_or_prefix}'; give the key's id instead.",
            code=ErrorCode.AMBIGUOUS_KEY,
        )
    return found[0]


def revoke(conn: Connection, id_or_prefix: str) -> HashedKeyRow:
    """Revoke a key (revoking it again is harmless). Returns its row, with the hash to publish."""
    row = find_one(conn, id_or_prefix)
    keys.revoke_key(conn, row.id)
    return row


def rotate(conn: Connection, id_or_prefix: str, expires_at: datetime | None) -> tuple[str, HashedKeyRow]:
    """A new key for the same tenant and label, and the old one revoked. Returns the new key, once,
    and the old key's row (with the hash to publish)."""
    old = find_one(conn, id_or_prefix)
    if old.revoked_at is not None:
        raise AppError("That key is revoked already; create a new one instead.", code=ErrorCode.REVOKED)
    new_key = keys.create_key(conn, old.tenant_id, label=old.label, expires_at=expires_at)
    keys.revoke_key(conn, old.id)
    return new_key, old
