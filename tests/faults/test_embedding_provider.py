"""Embedding provider faults from a real OpenAI-compatible server: 429 with Retry-After, 500s,
timeouts, wrong dimensions, refusals. Transient ones are retried with backoff (honouring Retry-After,
shared by every worker through Redis); permanent ones fail the document `embedding_failed` with no
chunks written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.stack import Stack
from tests import openai_stub
from tests.faults.support import FAULT_SETTINGS, new_client, query, running_stack, start_worker
from tests.helpers import ChuteClient

TEXT = b"The ferry timetable changes in winter: boats leave the harbour every ninety minutes.\n"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    with openai_stub.running() as address:
        yield address


@pytest.fixture(scope="module")
def openai_stack(tmp_path_factory: pytest.TempPathFactory, provider: str) -> Iterator[Stack]:
    settings = {
        **FAULT_SETTINGS,
        "CHUTE_EMBEDDING_PROVIDER": "openai",
        "CHUTE_EMBEDDING_MODEL": "text-embedding-test",
        "CHUTE_OPENAI_BASE_URL": f"{provider}/v1",
        "CHUTE_OPENAI_TIMEOUT_SECONDS": "2",
        "CHUTE_OPENAI_MAX_RETRIES": "4",
    }
    with running_stack(tmp_path_factory.mktemp("openai"), settings) as stack:
        yield stack


def script(provider: str, faults: list[dict[str, Any]]) -> None:
    httpx.post(f"{provider}/_script", json=faults, timeout=10).raise_for_status()


def requests_seen(provider: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{provider}/_log", timeout=10).json())


@pytest.fixture
def client(openai_stack: Stack) -> Iterator[ChuteClient]:
    with new_client(openai_stack, "embed") as chute:
        yield chute


@pytest.mark.parametrize(
    "faults",
    [
        [{"status": 500}, {"status": 502}],
        [{"delay": 3}],  # longer than the client's 2 s timeout
        [{"status": 429, "retry_after": 2}],
    ],
    ids=["server-errors", "timeout", "rate-limited"],
)
def test_transient_faults_are_retried_and_the_document_indexed(
    client: ChuteClient, provider: str, faults: list[dict[str, Any]]
) -> None:
    script(provider, faults)

    document = client.ingest("ferry.txt", TEXT)

    seen = requests_seen(provider)
    assert document["chunk_count"] == 1
    assert len(seen) == len(faults) + 1  # each fault, then the answer that worked
    assert client.search("ferry timetable winter", k=1)[0]["document_id"] == document["document_id"]
    if faults[0].get("retry_after"):
        waited = seen[1]["t"] - seen[0]["t"]
        assert waited >= 2, f"Retry-After: 2 was not honoured (retried after {waited:.2f} s)"


@pytest.mark.parametrize(
    ("faults", "words"),
    [
        ([{"dimensions": 10}], "dimensions"),
        ([{"status": 401}], "401"),
        ([{"status": 500}] * 5, "500"),
    ],
    ids=["wrong-dimensions", "refused", "keeps-failing"],
)
def test_permanent_faults_fail_the_document_with_no_chunks(
    client: ChuteClient, openai_stack: Stack, provider: str, faults: list[dict[str, Any]], words: str
) -> None:
    script(provider, faults)

    document = client.ingest("ferry.txt", TEXT, expect="failed")

    assert document["error"]["code"] == "embedding_failed"
    assert words in document["error"]["message"]
    assert (
        query(
            openai_stack, "SELECT count(*) AS n FROM chunks WHERE document_id = %s", document["document_id"]
        )[0]["n"]
        == 0
    )
    if faults[0].get("status") == 401:
        assert len(requests_seen(provider)) == 1, "a refusal is not worth retrying"


def test_a_rate_limit_pauses_every_worker(client: ChuteClient, openai_stack: Stack, provider: str) -> None:
    start_worker(openai_stack, "worker-2")
    script(provider, [{"status": 429, "retry_after": 3}])

    ids = [client.upload(f"ferry-{i}.txt", TEXT + str(i).encode())["document_id"] for i in range(6)]
    documents = [client.wait(document_id) for document_id in ids]

    assert {d["status"] for d in documents} == {"indexed"}
    seen = requests_seen(provider)
    throttled_at = seen[0]["t"]
    # Requests already on the wire when the 429 came back are allowed; none may start after it.
    during_pause = [r for r in seen[1:] if throttled_at + 0.3 < r["t"] < throttled_at + 3 - 0.05]
    assert during_pause == [], f"{len(during_pause)} requests went out while the provider asked all to wait"
