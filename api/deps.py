"""Request dependencies: the process state and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.state import AppState
from shared.db import transaction
from shared.errors import Unauthorized
from shared.repositories import keys

_bearer = HTTPBearer(auto_error=False, description="An API key made by `chute keys create`.")


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.chute
    return state


State = Annotated[AppState, Depends(get_state)]


def get_tenant(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    with transaction(state.pool) as conn:
        tenant = keys.tenant_for_key(conn, credentials.credentials)
    if tenant is None:
        raise Unauthorized("The API key is not valid.")
    return tenant


Tenant = Annotated[str, Depends(get_tenant)]
