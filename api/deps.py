"""Request dependencies: the process state and the caller's tenant.

Both are `async def`: FastAPI runs a plain `def` dependency in its thread pool, and that hand-off
would cost more than the work on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import authenticate
from api.state import AppState

# Declares the scheme in the OpenAPI document; `authenticate` does the checking.
_bearer = HTTPBearer(auto_error=False, description="An API key made by `chute keys create`.")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.chute
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_tenant(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    return await authenticate(request)


Tenant = Annotated[str, Depends(get_tenant)]
