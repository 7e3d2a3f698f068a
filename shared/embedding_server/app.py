"""The embedding server's HTTP face: OpenAI's `POST /v1/embeddings` (same request, answer and error
shapes), `GET /health` and `GET /metrics` (Prometheus).

A request is validated, tokenised on a worker thread (the Rust tokenizer releases the GIL, so it runs
beside the model), queued for the model thread (batching.py), and answered when its last text is done.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import numpy as np
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.exceptions import HTTPException

from shared.embedding_server import metrics
from shared.embedding_server.batching import Batcher
from shared.embedding_server.model import Loaded, load_model
from shared.settings import Settings

log = structlog.get_logger("chute.embedding_server")

# sentence-transformers' name of the packaged model, answered as well as the short one.
MODEL_ALIASES = ("sentence-transformers/",)


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request. Token-id inputs (lists of integers) are not accepted."""

    model_config = ConfigDict(extra="ignore")

    input: StrictStr | list[StrictStr]
    model: StrictStr
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


class OpenAIError(Exception):
    """An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> Response:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return _json(body, self.status)


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status, media_type="application/json")


def create_app(settings: Settings) -> FastAPI:
    """The app; the model loads (and runs one warm-up batch) before the server accepts a request."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loaded: Loaded = await asyncio.to_thread(load_model, settings)
        batcher = Batcher(
            loaded.model,
            max_batch_tokens=settings.embedding_server_max_batch_tokens,
            max_wait_seconds=settings.embedding_server_max_wait_ms / 1000,
        )
        batcher.start()
        await batcher.embed(await asyncio.to_thread(loaded.tokenizer.encode, ["warm-up"]))
        state.update(loaded=loaded, batcher=batcher)
        log.info(
            "embedding_server.ready",
            device=loaded.model.device,
            runtime=loaded.model.runtime,
            model=str(loaded.folder),
            max_batch_tokens=settings.embedding_server_max_batch_tokens,
            max_wait_ms=settings.embedding_server_max_wait_ms,
        )
        try:
            yield
        finally:
            batcher.stop()

    app = FastAPI(title="Chute embedding server", lifespan=lifespan)

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, error: OpenAIError) -> Response:
        metrics.REQUESTS.labels("invalid" if error.status < 500 else "failed").inc()
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        metrics.REQUESTS.labels("invalid").inc()
        if first["type"] == "json_invalid":
            return OpenAIError(400, "The request body is not valid JSON.").response()
        where = [str(part) for part in first["loc"][1:]]  # after "body"
        message = f"Invalid request: {first['msg']} (at {'.'.join(where) or 'the body'})."
        return OpenAIError(400, message, param=where[0] if where else None).response()

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        return OpenAIError(error.status_code, str(error.detail)).response()

    @app.get("/health")
    def health() -> dict[str, Any]:
        loaded: Loaded = state["loaded"]
        return {
            "status": "ok",
            "model": settings.embedding_model,
            "device": loaded.model.device,
            "runtime": loaded.model.runtime,
            "dimensions": loaded.model.dimensions,
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/embeddings")
    async def create_embeddings(request: EmbeddingRequest) -> Response:
        loaded: Loaded = state["loaded"]
        texts = [request.input] if isinstance(request.input, str) else request.input
        _check(request, texts, settings, loaded.model.dimensions)
        tokenised = await asyncio.to_thread(loaded.tokenizer.encode, texts)
        try:
            vectors = await state["batcher"].embed(tokenised)
        except Exception as error:
            raise OpenAIError(500, f"The model failed on this request: {error}") from error
        metrics.REQUESTS.labels("ok").inc()
        tokens = sum(len(ids) for ids in tokenised)
        return _json(
            {
                "object": "list",
                "data": _data(vectors, request.encoding_format),
                "model": request.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return app


def _check(request: EmbeddingRequest, texts: list[str], settings: Settings, dimensions: int) -> None:
    served = settings.embedding_model
    if request.model not in (served, *(prefix + served for prefix in MODEL_ALIASES)):
        raise OpenAIError(
            404,
            f"The model '{request.model}' is not served here; this server runs '{served}'.",
            param="model",
            code="model_not_found",
        )
    if not texts:
        raise OpenAIError(400, "'input' is an empty list: send at least one text.", param="input")
    if len(texts) > settings.embedding_server_max_inputs:
        raise OpenAIError(
            400,
            f"'input' holds {len(texts)} texts; at most {settings.embedding_server_max_inputs} per request.",
            param="input",
        )
    if request.dimensions is not None and request.dimensions != dimensions:
        raise OpenAIError(400, f"This model makes {dimensions}-dimensional vectors only.", param="dimensions")


def _data(vectors: np.ndarray, encoding: str) -> list[dict[str, Any]]:
    """OpenAI's `data` list: floats, or base64 of little-endian float32 bytes."""
    if encoding == "base64":
        rows: list[Any] = [base64.b64encode(row.astype("<f4").tobytes()).decode() for row in vectors]
    else:
        rows = vectors.tolist()
    return [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
