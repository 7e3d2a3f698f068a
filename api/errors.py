"""One error shape for every failure: `{"error": code, "detail": sentence}`."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.request_context import request_id_of
from shared.errors import AppError, ErrorCode
from shared.storage import StorageError, StorageRefused, StorageUnavailable

log = structlog.get_logger("chute.api")

_HTTP_CODES = {
    code.status: code
    for code in (
        ErrorCode.NOT_FOUND,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.TOO_LARGE,
    )
}


def error_response(
    code: ErrorCode, detail: str, *, status: int | None = None, retry_after: int | None = None, **extra: Any
) -> JSONResponse:
    """The error body with `code`'s status (`status` only for an `http_error`, whose status varies)."""
    status = status or code.status
    assert status is not None, f"{code} needs a status"
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, error: AppError) -> JSONResponse:
        return error_response(error.code, error.message, retry_after=error.retry_after)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"][1:]) or "body"
        return error_response(ErrorCode.VALIDATION_ERROR, f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, ErrorCode.HTTP_ERROR)
        return error_response(code, str(error.detail), status=error.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # Runs outside the request's middleware (Starlette's outermost layer), so the id is passed here.
        request_id = request_id_of(request.scope)
        log.exception("api.error", path=request.url.path, request_id=request_id)
        response = error_response(
            ErrorCode.INTERNAL_ERROR,
            f"Something went wrong on our side; it was logged as request {request_id}.",
        )
        response.headers["X-Request-ID"] = request_id
        return response


def install_dependency_handlers(app: FastAPI) -> None:
    """Dependencies that are down answer 503 with what is down, not 500."""
    import kombu.exceptions
    import psycopg
    import psycopg_pool
    import redis

    async def _database(_: Request, error: Exception) -> JSONResponse:
        log.warning("api.dependency.down", dependency="postgres", error=str(error))
        return error_response(ErrorCode.UNAVAILABLE, "The database is not answering; try again shortly.")

    async def _storage(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StorageError)
        # The bucket's own words stay in the log (with the request id); the tenant gets what to do.
        log.warning("api.dependency.down", dependency="s3", code=error.s3_code, error=error.message)
        if isinstance(error, StorageUnavailable):
            return error_response(error.code, "The bucket is not answering; try again shortly.")
        return error_response(error.code, "The bucket refused the operation; try again, or ask the operator.")

    async def _query_timeout(request: Request, error: Exception) -> JSONResponse:
        log.warning("api.query.timeout", path=request.url.path, error=str(error))
        seconds = request.app.state.chute.settings.api_statement_timeout_ms / 1000
        return error_response(
            ErrorCode.QUERY_TIMEOUT,
            f"The query ran past the {seconds:g} s limit and was stopped; narrow it or try again shortly.",
        )

    async def _queue(_: Request, error: Exception) -> JSONResponse:
        log.warning("api.dependency.down", dependency="redis", error=str(error))
        return error_response(ErrorCode.UNAVAILABLE, "The queue is not answering; try again shortly.")

    app.add_exception_handler(StorageUnavailable, _storage)
    app.add_exception_handler(StorageRefused, _storage)
    app.add_exception_handler(psycopg.OperationalError, _database)
    app.add_exception_handler(psycopg_pool.PoolTimeout, _database)
    # A subclass of OperationalError: Starlette picks the closest handler, so this one wins.
    app.add_exception_handler(psycopg.errors.QueryCanceled, _query_timeout)
    app.add_exception_handler(redis.exceptions.ConnectionError, _queue)
    app.add_exception_handler(kombu.exceptions.OperationalError, _queue)
