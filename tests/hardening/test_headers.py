"""The page and the API answer with headers that forbid framing, sniffing and foreign scripts; no page
loads a third-party script; CORS allowing any origin is said at start-up, and a listed origin is all a
production API allows."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from api.main import STATIC_DIR
from infra.stack import Stack
from tests.hardening.conftest import ExtraApi
from tests.helpers import ChuteClient


def test_the_page_and_the_api_forbid_framing_sniffing_and_inline_script(
    stack: Stack, anonymous: httpx.Client, client: ChuteClient
) -> None:
    for answer in (anonymous.get("/"), client.http.get("/v1/documents"), anonymous.get("/v1/documents")):
        policy = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy
        assert f"connect-src 'self' http://127.0.0.1:{stack.ports.s3}" in policy
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_no_page_loads_a_third_party_script(anonymous: httpx.Client) -> None:
    assert anonymous.get("/docs").status_code == 404  # Swagger UI would load from a CDN
    assert anonymous.get("/redoc").status_code == 404
    assert "/v1/search" in anonymous.get("/openapi.json").json()["paths"]
    for page in STATIC_DIR.glob("*.html"):
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.read_text())
        assert all(not re.match(r"(https?:)?//", source) for source in sources), (page, sources)


def test_cors_for_any_origin_is_said_at_start_up(
    extra_api: Callable[[dict[str, str]], ExtraApi],
) -> None:
    any_origin = extra_api({"CHUTE_CORS_ALLOW_ORIGINS": '["*"]'})
    listed = extra_api({"CHUTE_CORS_ALLOW_ORIGINS": '["https://chute.example.com"]'})
    preflight = {"Access-Control-Request-Method": "POST"}

    allowed = httpx.options(
        f"{listed.url}/v1/search", headers={**preflight, "Origin": "https://chute.example.com"}
    )
    refused = httpx.options(
        f"{listed.url}/v1/search", headers={**preflight, "Origin": "https://evil.example"}
    )

    assert "api.cors.any_origin" in any_origin.log.read_text()
    assert "api.cors.any_origin" not in listed.log.read_text()
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://chute.example.com"
    assert "Access-Control-Allow-Origin" not in refused.headers
