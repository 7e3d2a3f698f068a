"""Operations: liveness, readiness (each dependency checked), and the OpenAPI UI lives at /docs."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import State
from shared.pipeline.extractors.ocr import OcrOptions, ocr_state

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
def ready(state: State) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with state.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as error:
        checks["postgres"] = f"down: {type(error).__name__}"
    try:
        redis.Redis.from_url(state.settings.redis_url, socket_timeout=2, socket_connect_timeout=2).ping()
        checks["redis"] = "ok"
    except Exception as error:
        checks["redis"] = f"down: {type(error).__name__}"
    try:
        state.storage.ping()
        checks["bucket"] = "ok"
    except Exception as error:
        checks["bucket"] = f"down: {type(error).__name__}"
    down = [name for name, result in checks.items() if result != "ok"]
    if down:
        body = {"error": "unavailable", "detail": f"Not ready: {', '.join(down)} down.", "checks": checks}
        return JSONResponse(body, status_code=503)
    # Informational: OCR off is a deployment choice, not a reason to take the API out of rotation.
    ocr = ocr_state(OcrOptions.from_settings(state.settings))
    return JSONResponse({"status": "ready", "checks": checks, "ocr": ocr})
