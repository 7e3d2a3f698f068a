"""A document's whole path over real HTTP: presign, upload to the bucket, complete, worker, search."""

from __future__ import annotations

from shared.pipeline.tokens import token_counts
from tests.helpers import ChuteClient

TEXT = (
    "Chute moves documents into a vector index.\n\n"
    "The lighthouse keeper logged every passing ship in a leather-bound ledger.\n\n"
    + "\n\n".join(f"Paragraph {i} talks about harbour logistics and tide tables." for i in range(40))
)


def test_text_document_is_indexed_and_found(client: ChuteClient) -> None:
    document = client.ingest("notes.txt", TEXT.encode(), metadata={"team": "ops"})

    assert document["status"] == "indexed", document
    assert document["chunk_count"] >= 2
    assert document["progress"] == 100
    assert document["error"] is None
    assert document["metadata"] == {"team": "ops"}
    hits = client.search("who recorded the ships in a ledger?")
    assert hits[0]["document_id"] == document["document_id"]
    assert "lighthouse keeper" in hits[0]["text"]
    assert hits[0]["filename"] == "notes.txt"


def test_chunks_respect_requested_size_and_overlap(client: ChuteClient) -> None:
    # Sizes are in the embedding model's tokens ([CLS] and [SEP] included).
    document = client.ingest("sized.txt", TEXT.encode(), chunking={"chunk_size": 64, "overlap": 16})

    chunks = client.http.get(f"/v1/documents/{document['document_id']}/chunks", params={"limit": 500}).json()
    texts = [c["text"] for c in chunks["items"]]
    assert len(texts) == document["chunk_count"] > 5
    assert max(token_counts(texts)) <= 64
    assert [c["ordinal"] for c in chunks["items"]] == list(range(len(texts)))
