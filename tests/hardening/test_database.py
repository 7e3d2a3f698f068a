"""API statements have a time limit: a search stuck behind a lock (or simply too expensive) is stopped
by Postgres and answered 503 `query_timeout`, and the pooled connection is free again."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg

from infra.stack import Stack
from tests.hardening.conftest import ExtraApi
from tests.helpers import ChuteClient


def test_a_search_past_the_statement_timeout_answers_503(
    stack: Stack, client: ChuteClient, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    api = extra_api({"CHUTE_API_STATEMENT_TIMEOUT_MS": "1000", "CHUTE_DB_POOL_SIZE": "1"})
    body = {"query": "lighthouse", "mode": "keyword"}
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {client.key}"}) as http:
        assert http.post("/v1/search", json=body).status_code == 200

        # Another session holds the chunks table, as a long migration or a runaway query would.
        with psycopg.connect(stack.database_url) as blocker:
            blocker.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
            stuck = http.post("/v1/search", json=body, timeout=60)

        assert stuck.status_code == 503, stuck.text
        assert stuck.json()["error"] == "query_timeout"
        assert "1 s limit" in stuck.json()["detail"]
        # The pool's only connection was given back: the next search answers.
        assert http.post("/v1/search", json=body).status_code == 200
