"""Search modes and filters over real vectors and full text."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from infra.stack import Stack
from shared.pipeline.elements import Chunk
from shared.repositories.chunks import CANDIDATE_POSTINGS, replace_chunks
from tests.helpers import ChuteClient

DOCS = {
    "bees.txt": "Honey bees communicate the direction of flowers with a waggle dance inside the hive.",
    "volcano.txt": "Basaltic lava from shield volcanoes flows far because of its low viscosity.",
    "tax.txt": "Quarterly estimated tax payments are due in April, June, September and January.",
}


@pytest.fixture
def library(client: ChuteClient) -> dict[str, str]:
    ids = {}
    for name, text in DOCS.items():
        ids[name] = client.upload(name, text.encode(), metadata={"topic": name.split(".")[0]})["document_id"]
    for document_id in ids.values():
        client.wait(document_id)
    return ids


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_each_mode_finds_the_right_document(client: ChuteClient, library: dict[str, str], mode: str) -> None:
    query = "waggle dance of bees" if mode != "vector" else "how do insects tell each other where food is?"
    hits = client.search(query, mode=mode, k=3)

    assert hits[0]["document_id"] == library["bees.txt"]
    assert hits[0]["filename"] == "bees.txt"
    assert hits[0]["score"] > 0
    assert set(hits[0]) == {
        "chunk_id",
        "document_id",
        "filename",
        "ordinal",
        "page",
        "text",
        "score",
        "metadata",
    }


def test_filters_by_document_and_metadata(client: ChuteClient, library: dict[str, str]) -> None:
    only_tax = client.search("lava bees taxes", filter={"document_ids": [library["tax.txt"]]})
    volcano = client.search("lava bees taxes", filter={"metadata": {"topic": "volcano"}})

    assert {h["document_id"] for h in only_tax} == {library["tax.txt"]}
    assert {h["document_id"] for h in volcano} == {library["volcano.txt"]}


def test_k_bounds_and_answer_shape(client: ChuteClient, library: dict[str, str]) -> None:
    answer = client.http.post("/v1/search", json={"query": "anything", "k": 2})
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 2
    assert answer.json()["took_ms"] >= 0
    assert client.http.post("/v1/search", json={"query": "x", "k": 0}).status_code == 422
    assert client.http.post("/v1/search", json={"query": "x", "k": 101}).status_code == 422
    assert client.http.post("/v1/search", json={"query": "x", "mode": "magic"}).status_code == 422


def test_keyword_search_matches_all_words_else_any(client: ChuteClient, library: dict[str, str]) -> None:
    together = client.search("honey bees hive", mode="keyword", k=5)
    apart = client.search("basaltic lava quarterly payments", mode="keyword", k=5)  # no chunk has all four

    assert [h["document_id"] for h in together] == [library["bees.txt"]]
    assert {h["document_id"] for h in apart} == {library["volcano.txt"], library["tax.txt"]}


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_search_takes_any_text(client: ChuteClient, library: dict[str, str], mode: str) -> None:
    for query in [
        "see example.com/a%20b?x=1&y=%s",
        "'lava' & !bees | :* <->",
        "the of and",
        "%",
        "ünïcödé 数据",
    ]:
        answer = client.http.post("/v1/search", json={"query": query, "mode": mode, "k": 3})
        assert answer.status_code == 200, (query, answer.text)


def test_keyword_search_ranks_rare_words_above_common_ones(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    key = stack.create_key(tenant)
    texts = [f"Routine maintenance report number {i} for the pumping station." for i in range(1000)]
    texts[7] = texts[7].replace("Routine", "Impeller cavitation found during routine")
    texts[99] = texts[99].replace("Routine", "Impeller replaced after routine")
    _index_directly(stack, tenant, texts)  # as many chunks as the pipeline would make of a long manual

    with ChuteClient(f"http://127.0.0.1:{stack.ports.api}", key) as client:
        # No chunk has all three words; "maintenance" and "report" are in every chunk.
        hits = client.search("impeller maintenance report", mode="keyword", k=10)
        common_only = client.search("maintenance zeppelin station", mode="keyword", k=3)

    assert sorted(h["ordinal"] for h in hits[:2]) == [7, 99]
    assert hits[0]["score"] > hits[2]["score"]
    assert len(common_only) == 3


def test_when_every_word_is_common_the_chunks_with_all_of_them_rank(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    key = stack.create_key(tenant)
    # Each word in more chunks than CANDIDATE_POSTINGS: only chunks with all the words are ranked.
    texts = [
        f"Pump {'valve' if i % 2 else 'filter'} inspection, station {i}."
        for i in range(2 * CANDIDATE_POSTINGS + 2)
    ]
    _index_directly(stack, tenant, texts)

    with ChuteClient(f"http://127.0.0.1:{stack.ports.api}", key) as client:
        hits = client.search("pump valve inspection", mode="keyword", k=20)

    assert len(hits) == 20
    assert all("valve" in h["text"] for h in hits)


def test_word_statistics_follow_indexing_reindexing_and_deletion(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    key = stack.create_key(tenant)

    def chunks_with(word: str) -> int:
        with psycopg.connect(stack.database_url) as conn:
            row = conn.execute(
                "SELECT chunks FROM chunk_terms WHERE tenant_id = %s AND lexeme = %s", (tenant, word)
            ).fetchone()
        return int(row[0]) if row else 0

    with ChuteClient(f"http://127.0.0.1:{stack.ports.api}", key) as client:
        document_id = client.ingest("counts.txt", b"Quasars outshine galaxies.\n\nQuasars are far away.")[
            "document_id"
        ]
        assert chunks_with("quasar") == 1  # one chunk, however often it says the word
        client.http.post(f"/v1/documents/{document_id}/reindex").raise_for_status()
        assert client.wait(document_id)["status"] == "indexed"
        assert chunks_with("quasar") == 1  # replaced, not counted twice
        assert client.http.delete(f"/v1/documents/{document_id}").status_code == 204
        assert chunks_with("quasar") == 0


def _index_directly(stack: Stack, tenant: str, texts: list[str]) -> None:
    """An indexed document with these chunks, written the way the worker writes them."""
    document_id = uuid.uuid4()
    vectors = np.random.default_rng(3).standard_normal((len(texts), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with psycopg.connect(stack.database_url) as conn:
        register_vector(conn)
        conn.execute(
            "INSERT INTO documents (id, tenant_id, filename, file_type, content_type, object_key, status,"
            " chunking, chunk_count, indexed_at)"
            " VALUES (%s, %s, 'manual.txt', 'txt', 'text/plain', %s, 'indexed', %s, %s, now())",
            (document_id, tenant, f"{tenant}/{document_id}", Jsonb({}), len(texts)),
        )
        chunks = [Chunk(ordinal=i, text=text, page=None, metadata={}) for i, text in enumerate(texts)]
        replace_chunks(conn, document_id, tenant, chunks, vectors)  # type: ignore[arg-type]
