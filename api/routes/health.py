"""Operations: liveness and readiness (each dependency checked, at most once a second per process)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.auth import limit_anonymous
from api.deps import State
from api.state import AppState
from shared.errors import ErrorCode
from shared.pipeline.extractors.ocr import OcrOptions, ocr_state

router = APIRouter(tags=["operations"])
log = structlog.get_logger("chute.api")


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _down(dependency: str, error: Exception) -> str:
    """What /ready says about a dependency that failed its check; the why goes to the log."""
    log.warning("api.ready.down", dependency=dependency, error=repr(error))
    return "down"


def _check(state: AppState) -> tuple[int, dict[str, Any]]:
    checks: dict[str, str] = {}
    try:
        with state.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as error:
        checks["postgres"] = _down("postgres", error)
    try:
        state.notices.ping()
        checks["redis"] = "ok"
    except Exception as error:
        checks["redis"] = _down("redis", error)
    try:
        state.storage.ping()
        checks["bucket"] = "ok"
    except Exception as error:
        checks["bucket"] = _down("bucket", error)
    down = [name for name, result in checks.items() if result != "ok"]
    if down:
        return 503, {
            "error": ErrorCode.UNAVAILABLE,
            "detail": f"Not ready: {', '.join(down)} down.",
            "checks": checks,
        }
    # Informational: OCR off is a deployment choice, not a reason to take the API out of rotation.
    ocr = ocr_state(OcrOptions.from_settings(state.settings))
    return 200, {"status": "ready", "checks": checks, "ocr": ocr}


@router.get("/ready", dependencies=[Depends(limit_anonymous)])
def ready(state: State) -> JSONResponse:
    status, body = state.readiness.get(lambda: _check(state))
    return JSONResponse(body, status_code=status)
