"""Documents after upload: listing, chunks, cancel, reindex, delete, tasks, and tenant walls."""

from __future__ import annotations

import uuid

import httpx

from tests.helpers import Bucket, ChuteClient

ESSAY = "\n\n".join(
    f"Section {i}. The migratory patterns of arctic terns span both poles, and observation {i} "
    "recorded their routes over the Atlantic with small geolocators."
    for i in range(30)
)


def test_list_pages_newest_first_and_filters_by_status(client: ChuteClient) -> None:
    ids = [client.presign(f"doc{i}.txt", 10).json()["document_id"] for i in range(5)]

    first = client.http.get("/v1/documents", params={"limit": 2}).json()
    second = client.http.get("/v1/documents", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.http.get("/v1/documents", params={"limit": 2, "cursor": second["next_cursor"]}).json()

    listed = [d["document_id"] for page in (first, second, third) for d in page["items"]]
    assert listed == list(reversed(ids))
    assert third["next_cursor"] is None
    waiting = client.http.get("/v1/documents", params={"status": "awaiting_upload"}).json()["items"]
    assert len(waiting) == 5
    assert client.http.get("/v1/documents", params={"status": "indexed"}).json()["items"] == []
    assert client.http.get("/v1/documents", params={"status": "bogus"}).status_code == 400
    assert client.http.get("/v1/documents", params={"cursor": "garbage"}).status_code == 400


def test_chunks_are_paged_in_order(client: ChuteClient) -> None:
    document = client.ingest("terns.txt", ESSAY.encode(), chunking={"chunk_size": 96, "overlap": 0})
    url = f"/v1/documents/{document['document_id']}/chunks"

    first = client.http.get(url, params={"limit": 3}).json()
    rest = client.http.get(url, params={"limit": 500, "cursor": first["next_cursor"]}).json()

    ordinals = [c["ordinal"] for c in first["items"] + rest["items"]]
    assert ordinals == list(range(document["chunk_count"]))
    assert rest["next_cursor"] is None
    assert "arctic terns" in first["items"][0]["text"]
    assert first["items"][0]["metadata"]["element_types"]


def test_task_view_follows_the_document(client: ChuteClient) -> None:
    queued = client.upload("task.txt", ESSAY.encode())
    document = client.wait(queued["document_id"])

    task = client.http.get(queued["task_url"]).json()

    assert task["task_id"] == queued["task_id"]
    assert task["status"] == "SUCCESS"
    assert task["result"] == {"document_id": document["document_id"], "chunk_count": document["chunk_count"]}
    assert task["error"] is None
    assert client.http.get(f"/v1/tasks/{uuid.uuid4()}").status_code == 404
    assert client.http.delete(queued["task_url"]).status_code == 409


def test_cancel_a_queued_document_stops_it(client: ChuteClient) -> None:
    data = ESSAY.encode()
    presigned = client.presign("cancel.txt", len(data)).json()
    client.post_to_bucket(presigned["upload"], data)
    # Cancel before completing, then complete: the document must never be processed.
    cancelled = client.http.post(f"/v1/documents/{presigned['document_id']}/cancel")

    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    again = client.http.post(f"/v1/documents/{presigned['document_id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"] == "already_final"
    assert client.complete(presigned["document_id"]).status_code == 409


def test_cancel_while_queued_or_processing_ends_cancelled_without_chunks(client: ChuteClient) -> None:
    big = (
        "\n\n".join(
            f"Paragraph {i} about glaciers, fjords and the retreat of ice sheets." for i in range(3000)
        )
    ).encode()
    queued = client.upload("glaciers.txt", big)

    answer = client.http.post(f"/v1/documents/{queued['document_id']}/cancel")

    assert answer.status_code == 202
    document = client.wait(queued["document_id"])
    assert document["status"] == "cancelled"
    assert document["chunk_count"] == 0
    chunks = client.http.get(f"/v1/documents/{queued['document_id']}/chunks").json()["items"]
    assert chunks == []


def test_reindex_replaces_chunks_without_duplicates(client: ChuteClient) -> None:
    document = client.ingest("reindex.txt", ESSAY.encode())

    answer = client.http.post(f"/v1/documents/{document['document_id']}/reindex")

    assert answer.status_code == 202
    again = client.wait(document["document_id"])
    assert again["status"] == "indexed"
    assert again["chunk_count"] == document["chunk_count"]
    assert again["attempts"] == 2
    chunks = client.http.get(f"/v1/documents/{document['document_id']}/chunks", params={"limit": 500}).json()
    assert [c["ordinal"] for c in chunks["items"]] == list(range(document["chunk_count"]))


def test_delete_removes_row_chunks_and_object(client: ChuteClient, bucket: Bucket) -> None:
    document = client.ingest("delete-me.txt", b"A unique phrase: purple zeppelin orchestra.\n")

    assert client.http.delete(f"/v1/documents/{document['document_id']}").status_code == 204

    assert client.http.get(f"/v1/documents/{document['document_id']}").status_code == 404
    assert all(
        h["document_id"] != document["document_id"] for h in client.search("purple zeppelin orchestra")
    )
    assert document["object_key"] not in bucket.object_keys()


def test_tenants_cannot_see_each_other(client: ChuteClient, other_client: ChuteClient) -> None:
    mine = client.upload("secret.txt", b"The vault combination is kept by the quartermaster.\n")
    document = client.wait(mine["document_id"])
    doc_url = f"/v1/documents/{document['document_id']}"

    for answer in (
        other_client.http.get(doc_url),
        other_client.http.get(f"{doc_url}/chunks"),
        other_client.http.post(f"{doc_url}/cancel"),
        other_client.http.post(f"{doc_url}/reindex"),
        other_client.http.delete(doc_url),
        other_client.http.get(f"/v1/tasks/{mine['task_id']}"),
        other_client.http.post(f"/v1/uploads/{document['document_id']}/complete", json={}),
    ):
        assert answer.status_code == 404, answer.request.url
        assert answer.json()["error"] == "not_found"
    assert other_client.http.get("/v1/documents").json()["items"] == []
    for mode in ("hybrid", "vector", "keyword"):
        assert other_client.search("vault combination quartermaster", mode=mode) == []
    assert client.document(document["document_id"])["status"] == "indexed"


def test_health_ready_and_openapi(anonymous: httpx.Client) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}
    ready = anonymous.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "redis": "ok", "bucket": "ok"}
    paths = anonymous.get("/openapi.json").json()["paths"]
    assert {"/v1/uploads", "/v1/uploads/batch", "/v1/documents", "/v1/search"} <= set(paths)
