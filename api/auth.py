"""Who is calling: the API key is checked before the request's body is read, and counted.

FastAPI reads and parses a body before it resolves dependencies, so an anonymous client could make
the API hold a body of any size just to be told 401. Routes of `AuthenticatedRoute` look the key up
first; the `Tenant` dependency then reads the answer from the request.

Lookups are cached per process both ways: a valid key for `api_key_cache_seconds`, an unknown one for
`api_key_negative_cache_seconds`, so a client repeating a bad key costs no database round trip. Each
request then counts against its tenant's rate; one without a valid key against its address's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.rate_limits import check_rate
from api.state import AppState
from shared.errors import Unauthorized
from shared.services import api_keys

_CACHE_MAX = 10_000


class _ExpiringCache:
    """key hash -> (value, expiry); cleared whole when full, which only costs lookups again."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, float]] = {}

    def get(self, key_hash: str) -> str | None:
        entry = self.entries.get(key_hash)
        return entry[0] if entry is not None and entry[1] > time.monotonic() else None

    def put(self, key_hash: str, value: str, seconds: float) -> None:
        if seconds <= 0:
            return
        if len(self.entries) >= _CACHE_MAX:
            self.entries.clear()
        self.entries[key_hash] = (value, time.monotonic() + seconds)

    def drop(self, key_hash: str) -> None:
        self.entries.pop(key_hash, None)


known_keys = _ExpiringCache()  # valid key -> tenant
unknown_keys = _ExpiringCache()  # key that matched nothing -> ""


async def authenticate(request: Request) -> str:
    """The caller's tenant (looked up once per request), or 401; 429 past the rate limits."""
    tenant: str | None = getattr(request.state, "tenant", None)
    if tenant is None:
        state: AppState = request.app.state.chute
        address = request.client.host if request.client else "-"
        authorization = request.headers.get("authorization", "")
        tenant = await _tenant_for(state, authorization, address)
        await check_rate(state.limits, f"t:{tenant}", state.settings.rate_limit_per_second)
        request.state.tenant = tenant
        request.state.key_hash = api_keys.hash_key(authorization.partition(" ")[2].strip())
    return tenant


async def limit_anonymous(request: Request) -> None:
    """Count a request that needs no key (readiness, metrics) against its address's rate."""
    state: AppState = request.app.state.chute
    address = request.client.host if request.client else "-"
    await check_rate(state.limits, f"a:{address}", state.settings.anonymous_rate_limit_per_second)


async def _tenant_for(state: AppState, authorization: str, address: str) -> str:
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        await check_rate(state.limits, f"a:{address}", state.settings.anonymous_rate_limit_per_second)
        raise Unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    key_hash = api_keys.hash_key(key)
    tenant = known_keys.get(key_hash)
    if tenant is not None:
        return tenant
    # Every request reaching this point may cost a database lookup: counted against the address.
    await check_rate(state.limits, f"a:{address}", state.settings.anonymous_rate_limit_per_second)
    found = await api_keys.find_by_hash(state.reads, key_hash) if unknown_keys.get(key_hash) is None else None
    if found is None:
        unknown_keys.put(key_hash, "", state.settings.api_key_negative_cache_seconds)
        raise Unauthorized("The API key is not valid.")
    tenant = str(found.tenant_id)
    seconds = state.settings.api_key_cache_seconds
    if found.expires_at is not None:  # an expiring key is never remembered past its expiry
        seconds = min(seconds, (found.expires_at - datetime.now(UTC)).total_seconds())
    known_keys.put(key_hash, tenant, seconds)
    return tenant


def forget_key(key_hash: str, negative_seconds: float) -> None:
    """A key was revoked: refuse it from now on in this process, without asking the database."""
    known_keys.drop(key_hash)
    unknown_keys.put(key_hash, "", negative_seconds)


class AuthenticatedRoute(APIRoute):
    """A route that answers 401 before reading the body when the key is missing or wrong."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            await authenticate(request)
            return await handler(request)

        return authenticated
