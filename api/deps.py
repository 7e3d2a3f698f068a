"""Request dependencies: the process state and the caller's tenant.

Both are `async def`: FastAPI runs a plain `def` dependency in its thread pool, and that hand-off
would cost more than the work on every request.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.state import AppState
from shared.errors import Unauthorized
from shared.repositories import keys

_bearer = HTTPBearer(auto_error=False, description="An API key made by `chute keys create`.")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.chute
    return state


State = Annotated[AppState, Depends(get_state)]


# key hash -> (tenant, when the entry expires); valid keys only, so bad keys cannot fill it.
_known_keys: dict[str, tuple[str, float]] = {}
_KNOWN_KEYS_MAX = 10_000


async def get_tenant(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    key_hash = keys.hash_key(credentials.credentials)
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


Tenant = Annotated[str, Depends(get_tenant)]
