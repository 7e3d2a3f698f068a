"""Rate limits and quotas: requests past a tenant's (or an address's) rate answer 429 with Retry-After,
counted in Redis by every API process; a bad key, once seen, and /metrics cost no database work; a
tenant past a quota is told so, and sees its usage at /v1/usage."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import psycopg

from infra.stack import Stack
from tests.hardening.conftest import ExtraApi
from tests.helpers import ChuteClient


def test_requests_past_the_tenant_rate_answer_429_on_every_process(
    client: ChuteClient, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    limit = {"CHUTE_RATE_LIMIT_PER_SECOND": "5"}
    first, second = extra_api(limit), extra_api(limit)
    headers = {"Authorization": f"Bearer {client.key}"}

    answers = [
        httpx.get(f"{api.url}/v1/documents", headers=headers) for _ in range(15) for api in (first, second)
    ]

    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert {a.status_code for a in answers} == {200, 429}
    assert limited[0].json()["error"] == "rate_limited"
    assert limited[0].headers["Retry-After"] == "1"


def test_traffic_without_a_valid_key_is_limited_per_address(
    extra_api: Callable[[dict[str, str]], ExtraApi],
) -> None:
    api = extra_api({"CHUTE_ANONYMOUS_RATE_LIMIT_PER_SECOND": "3"})

    bad_key = [
        httpx.get(f"{api.url}/v1/documents", headers={"Authorization": "Bearer chute_nope"}).status_code
        for _ in range(20)
    ]
    time.sleep(1.1)  # the limit counts in one-second windows: the next one starts afresh
    ready = [httpx.get(f"{api.url}/ready").status_code for _ in range(10)]

    assert set(bad_key) == {401, 429}, bad_key
    assert ready[0] == 200 and 429 in ready, ready


def test_a_bad_key_and_metrics_cost_no_database_work_once_seen(
    stack: Stack, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    api = extra_api({"CHUTE_API_STATEMENT_TIMEOUT_MS": "2000"})
    bad = {"Authorization": "Bearer chute_not-a-real-key"}
    assert httpx.get(f"{api.url}/v1/documents", headers=bad).status_code == 401
    assert httpx.get(f"{api.url}/metrics").status_code == 200

    # With the tables locked, any query would wait out the statement timeout and answer 503.
    with psycopg.connect(stack.database_url) as blocker:
        blocker.execute("LOCK TABLE api_keys, documents IN ACCESS EXCLUSIVE MODE")
        again = httpx.get(f"{api.url}/v1/documents", headers=bad, timeout=30)
        scraped = httpx.get(f"{api.url}/metrics", timeout=30)

    assert again.status_code == 401, again.text
    assert scraped.status_code == 200, scraped.text


def test_quotas_refuse_uploads_and_usage_shows_them(
    client: ChuteClient, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    api = extra_api({"CHUTE_TENANT_MAX_PENDING_UPLOADS": "2", "CHUTE_TENANT_MAX_BYTES": "1000"})
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {client.key}"}) as http:
        for name in ("a.txt", "b.txt"):
            assert http.post("/v1/uploads", json={"filename": name, "size": 100}).status_code == 201
        third = http.post("/v1/uploads", json={"filename": "c.txt", "size": 100})
        usage = http.get("/v1/usage").json()

    assert third.status_code == 429, third.text
    assert third.json()["error"] == "quota_exceeded"
    assert third.headers["Retry-After"] == "60"
    assert usage["documents"] == 2 and usage["bytes"] == 200 and usage["pending_uploads"] == 2
    assert usage["limits"]["pending_uploads"] == 2 and usage["limits"]["bytes"] == 1000


def test_an_upload_past_the_byte_quota_is_refused(
    client: ChuteClient, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    api = extra_api({"CHUTE_TENANT_MAX_BYTES": "1000"})

    answer = httpx.post(
        f"{api.url}/v1/uploads",
        json={"filename": "big.txt", "size": 1001},
        headers={"Authorization": f"Bearer {client.key}"},
    )

    assert answer.status_code == 429, answer.text
    assert answer.json()["error"] == "quota_exceeded"
    assert "Retry-After" not in answer.headers
    assert client.http.get("/v1/usage").json()["documents"] == 0
