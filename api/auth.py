"""Who is calling: the API key is checked before the request's body is read.

FastAPI reads and parses a body before it resolves dependencies, so an anonymous client could make
the API hold a body of any size just to be told 401. Routes of `AuthenticatedRoute` look the key up
first; the `Tenant` dependency then reads the answer from the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.state import AppState
from shared.errors import Unauthorized
from shared.repositories import keys

# key hash -> (tenant, when the entry expires); valid keys only, so bad keys cannot fill it.
_known_keys: dict[str, tuple[str, float]] = {}
_KNOWN_KEYS_MAX = 10_000


async def authenticate(request: Request) -> str:
    """The caller's tenant (looked up once per request), or 401."""
    tenant: str | None = getattr(request.state, "tenant", None)
    if tenant is None:
        tenant = await _tenant_for(request.app.state.chute, request.headers.get("authorization", ""))
        request.state.tenant = tenant
    return tenant


async def _tenant_for(state: AppState, authorization: str) -> str:
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    key_hash = keys.hash_key(key)
    known = _known_keys.get(key_hash)
    if known is not None and known[1] > time.monotonic():
        return known[0]
    tenant = await keys.tenant_for_key_hash(state.reads, key_hash)
    if tenant is None:
        raise Unauthorized("The API key is not valid.")
    if state.settings.api_key_cache_seconds > 0:
        if len(_known_keys) >= _KNOWN_KEYS_MAX:
            _known_keys.clear()
        _known_keys[key_hash] = (tenant, time.monotonic() + state.settings.api_key_cache_seconds)
    return tenant


class AuthenticatedRoute(APIRoute):
    """A route that answers 401 before reading the body when the key is missing or wrong."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated(request: Request) -> Response:
            await authenticate(request)
            return await handler(request)

        return authenticated
