"""The FastAPI application: `uvicorn api.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_dependency_handlers, install_error_handlers
from api.routes import documents, health, search, tasks, uploads
from api.state import AppState
from shared.db import open_pool
from shared.logging import configure_logging
from shared.queue import make_celery
from shared.settings import Settings, get_settings
from shared.storage import Storage


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging()
        pool = open_pool(settings)
        app.state.chute = AppState(
            settings=settings, pool=pool, storage=Storage(settings), celery=make_celery(settings)
        )
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="Chute",
        version="1.0.0",
        summary="Document ingestion for retrieval: upload, watch, search.",
        lifespan=lifespan,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    install_error_handlers(app)
    install_dependency_handlers(app)
    for module in (health, uploads, documents, tasks, search):
        app.include_router(module.router)
    return app


app = create_app()
