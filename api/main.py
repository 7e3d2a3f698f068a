"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import redis
import redis.asyncio
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api.auth import forget_key
from api.body_limits import BodyLimits
from api.errors import install_dependency_handlers, install_error_handlers
from api.live import LiveHub
from api.request_context import RequestContext
from api.routes import bucket_notifications, documents, health, metrics, search, tasks, uploads, usage
from api.schemas import ErrorBody
from api.security_headers import SecurityHeaders
from api.state import AppState
from shared.db import open_pool, open_read_pool
from shared.logging import configure_logging
from shared.pipeline.environment import configure_library_environment
from shared.queue import make_celery
from shared.settings import Settings, get_settings
from shared.storage import Storage

STATIC_DIR = Path(__file__).parent / "static"
log = structlog.get_logger("chute.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_library_environment()  # before the search embedder loads its model
        configure_logging()
        if "*" in settings.cors_allow_origins:
            log.warning(
                "api.cors.any_origin",
                detail="CHUTE_CORS_ALLOW_ORIGINS allows any origin: right for the local stack only; "
                "list your page's origins in production.",
            )
        pool = open_pool(settings, statement_timeout_ms=settings.api_statement_timeout_ms)
        reads = await open_read_pool(settings)
        events = redis.asyncio.Redis.from_url(settings.redis_url)
        limits = redis.asyncio.Redis.from_url(
            settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        live = LiveHub(
            events,
            per_tenant=settings.sse_max_streams_per_tenant,
            per_process=settings.sse_max_streams_per_process,
        )
        live.on_revoked.append(partial(forget_key, negative_seconds=settings.api_key_cache_seconds))
        live.start()
        app.state.chute = AppState(
            settings=settings,
            pool=pool,
            reads=reads,
            storage=Storage(settings),
            celery=make_celery(settings),
            redis=events,
            limits=limits,
            notices=redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2),
            proxied_uploads=asyncio.Semaphore(settings.proxied_upload_concurrency),
            live=live,
        )
        # Load the query embedder now, in the background: the first search need not wait for it.
        threading.Thread(target=app.state.chute.warm_up, name="embedder-warmup", daemon=True).start()
        try:
            yield
        finally:
            await live.stop()
            await events.aclose()
            await limits.aclose()
            app.state.chute.notices.close()
            await reads.close()
            pool.close()

    app = FastAPI(
        title="Chute",
        version="1.0.0",
        summary="Document ingestion for retrieval: upload, watch, search.",
        lifespan=lifespan,
        # Every error has the one shape; its codes and their statuses are in docs/http-contract.md.
        responses={
            "4XX": {"model": ErrorBody, "description": "The request was refused: `error` says why."},
            "5XX": {"model": ErrorBody, "description": "A dependency is down, or a bug (logged)."},
        },
        # Swagger UI and ReDoc load their scripts from a CDN; /openapi.json is served for any viewer.
        docs_url=None,
        redoc_url=None,
    )
    # No route reads a byte past its limit. Added before CORS, so CORS wraps it and its 413 too.
    app.add_middleware(BodyLimits, settings=settings)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(RequestContext)  # outermost: every answer and log line has the request's id
    install_error_handlers(app)
    install_dependency_handlers(app)
    for module in (health, metrics, uploads, documents, tasks, search, usage, bucket_notifications):
        app.include_router(module.router)
    # The upload page: static files, no build step. Mounted last so API routes take precedence.
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="page")
    return app


app = create_app()
