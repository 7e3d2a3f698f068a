"""A small client for the Chute HTTP API (docs/http-contract.md), for the `chute` commands.

Every failure becomes a `CliError` whose message is one sentence a person can act on: the API's own
`{"error", "detail"}`, a refused key, or a server that cannot be reached. Nothing here imports the
database or the server's settings; the CLI talks to Chute only over HTTP.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "chute-cli/0.1"
FINAL_STATES = frozenset({"indexed", "failed", "cancelled", "expired"})


class CliError(Exception):
    """A failure to report as one line on stderr, then exit with `exit_code`."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The API answered with an error status."""

    def __init__(self, status: int, code: str, detail: str, *, message: str | None = None) -> None:
        super().__init__(message or f"{detail} ({status} {code})")
        self.status = status
        self.code = code
        self.detail = detail


class Unreachable(CliError):
    """No answer at all: connection refused, DNS, timeout, TLS."""


def resolve_url(url: str | None) -> str:
    """`--url`, else `CHUTE_URL`, else the local stack's (`.chute/env`), else the default."""
    from cli.local_stack import api_url

    url = (url or api_url() or DEFAULT_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(
            f"The API URL '{url}' must start with http:// or https:// (--url or CHUTE_URL).", exit_code=2
        )
    return url


def resolve_key(key: str | None) -> str:
    key = (key or os.environ.get("CHUTE_API_KEY") or "").strip()
    if not key:
        raise CliError(
            "No API key: pass --api-key or set CHUTE_API_KEY "
            "(an administrator creates one with `chute keys create --tenant NAME`).",
            exit_code=2,
        )
    return key


def transport_error(error: Exception, where: str) -> CliError:
    """A one-line explanation of an httpx transport failure (no answer from `where`)."""
    import httpx

    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectTimeout | httpx.ConnectError):
        return Unreachable(f"Cannot reach {where}: {reason}. Is it running, and is the URL right?")
    if isinstance(error, httpx.TimeoutException):
        return Unreachable(f"{where} did not answer in time ({type(error).__name__}).")
    return Unreachable(f"Lost the connection to {where}: {reason}.")


def api_error(response: httpx.Response) -> ApiError:
    """The API's `{"error", "detail"}` as an exception; anything else (a proxy's page) summarised."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        code = str(body.get("error") or "error")
        detail = body["detail"]
        if not isinstance(detail, str):  # a framework's validation list, should one slip through
            detail = (
                "; ".join(str(item.get("msg", item)) for item in detail)
                if isinstance(detail, list)
                else str(detail)
            )
    else:
        code = "http_error"
        text = " ".join(response.text.split())[:200]
        detail = f"HTTP {status} from {response.request.url}" + (f": {text}" if text else "")
    if status == 401:
        return ApiError(
            status,
            code,
            detail,
            message=f"The API key was refused: {detail} Check --api-key or CHUTE_API_KEY.",
        )
    return ApiError(status, code, detail)


class ChuteApi:
    """The calls the CLI makes. Thread-safe: uploads presign and complete from worker threads."""

    def __init__(
        self, url: str, key: str, *, timeout: float = 60.0, http: httpx.Client | None = None
    ) -> None:
        import httpx

        self.url = url
        self.http = http or httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    def __enter__(self) -> ChuteApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise transport_error(error, f"the Chute API at {self.url}") from None
        if response.status_code >= 400:
            raise api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"{self.url}{path} did not answer JSON (HTTP {response.status_code}); is --url a Chute API?"
            ) from None

    # -- uploads --------------------------------------------------------------------------------

    def presign(self, request: dict[str, Any]) -> dict[str, Any]:
        return dict(self.json("POST", "/v1/uploads", json=request))

    def presign_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self.json("POST", "/v1/uploads/batch", json={"files": requests})
        return list(answer["uploads"])

    def complete(self, document_id: str, parts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"parts": parts} if parts is not None else {}
        return dict(self.json("POST", f"/v1/uploads/{document_id}/complete", json=body))

    # -- documents ------------------------------------------------------------------------------

    def document(self, document_id: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/v1/documents/{document_id}"))

    def documents(self, *, status: str | None, limit: int, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return dict(self.json("GET", "/v1/documents", params=params))

    def delete(self, document_id: str) -> None:
        self.request("DELETE", f"/v1/documents/{document_id}")

    def search(
        self, query: str, *, k: int, mode: str, document_ids: list[str], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "k": k, "mode": mode}
        filters: dict[str, Any] = {}
        if document_ids:
            filters["document_ids"] = document_ids
        if metadata:
            filters["metadata"] = metadata
        if filters:
            body["filter"] = filters
        return dict(self.json("POST", "/v1/search", json=body))
