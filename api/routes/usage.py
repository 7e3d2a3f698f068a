"""`/v1/usage`: what the caller's tenant holds and the limits it works within."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import AuthenticatedRoute
from api.deps import State, Tenant
from api.schemas import UsageOut
from shared.db import transaction
from shared.services import quotas

router = APIRouter(prefix="/v1/usage", tags=["usage"], route_class=AuthenticatedRoute)


@router.get("")
def get_usage(tenant: Tenant, state: State) -> UsageOut:
    with transaction(state.pool) as conn:
        return UsageOut.model_validate(quotas.usage(conn, state.settings, tenant))
