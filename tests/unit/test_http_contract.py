"""docs/http-contract.md and the application agree: the same routes, the same error codes, and the
page's error table is the one `ErrorCode` makes. Each test fails on drift in either direction."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from shared.errors import ErrorCode, markdown_table
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "http-contract.md").read_text()
ROUTE_IN_PAGE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_./{}-]*)")
TABLE = re.compile(r"<!-- error-codes:[^\n]*-->\n(.*?)<!-- /error-codes -->", re.DOTALL)


@pytest.fixture(scope="module")
def app_routes() -> tuple[set[tuple[str, str]], dict[str, Any]]:
    """(method, path) of every route the app serves (its OpenAPI's and the OpenAPI document itself),
    and its OpenAPI."""
    app = create_app(Settings())
    openapi = app.openapi()
    served = {
        (method.upper(), path) for path, operations in openapi["paths"].items() for method in operations
    }
    assert app.openapi_url is not None
    return served | {("GET", app.openapi_url)}, openapi


def test_the_pages_error_table_is_the_one_error_code_makes() -> None:
    found = TABLE.search(PAGE)
    assert found is not None, "docs/http-contract.md lost its generated error-code table"
    assert found.group(1) == markdown_table(), "regenerate the table with shared.errors.markdown_table()"


def test_every_route_of_the_openapi_is_in_the_page(app_routes: tuple[set[tuple[str, str]], Any]) -> None:
    served, _ = app_routes
    undocumented = served - set(ROUTE_IN_PAGE.findall(PAGE))
    assert not undocumented, f"routes missing from docs/http-contract.md: {sorted(undocumented)}"


def test_every_route_in_the_page_exists(app_routes: tuple[set[tuple[str, str]], Any]) -> None:
    served, _ = app_routes
    unknown = set(ROUTE_IN_PAGE.findall(PAGE)) - served
    assert not unknown, f"docs/http-contract.md describes routes the app does not serve: {sorted(unknown)}"


def test_every_api_route_declares_the_error_shape_with_every_http_code(
    app_routes: tuple[set[tuple[str, str]], Any],
) -> None:
    _, openapi = app_routes
    body = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for status in ("4XX", "5XX"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == body, f"{method.upper()} {path} {status} is not the one error shape"
    listed = set(openapi["components"]["schemas"]["ErrorCode"]["enum"])
    http_codes = {code.value for code in ErrorCode if code.status is not None}
    assert http_codes <= listed, f"codes missing from the OpenAPI error body: {sorted(http_codes - listed)}"


def test_every_error_code_is_in_the_page() -> None:
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in PAGE]
    assert not missing, f"error codes missing from docs/http-contract.md: {missing}"
