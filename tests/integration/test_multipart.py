"""Multipart uploads: big files go to the bucket in presigned parts, then complete with their ETags."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import MULTIPART_PART_SIZE, MULTIPART_THRESHOLD
from tests.documents import big_docx
from tests.helpers import Bucket, ChuteClient

SENTENCE = "The survey crew mapped seventeen kilometres of limestone caves under the plateau."


def put_parts(client: ChuteClient, upload: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    size = upload["part_size"]

    def put(part: dict[str, Any]) -> dict[str, Any]:
        start = (part["part_number"] - 1) * size
        answer = client.bucket_http.put(part["url"], content=data[start : start + size])
        assert answer.status_code == 200, answer.text
        return {"part_number": part["part_number"], "etag": answer.headers["ETag"]}

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(put, upload["parts"]))


def test_big_file_uploads_in_parts_and_is_indexed(client: ChuteClient) -> None:
    data = big_docx(MULTIPART_THRESHOLD + 2 * MULTIPART_PART_SIZE // 2, SENTENCE)
    presigned = client.presign("caves.docx", len(data)).json()
    upload = presigned["upload"]

    assert upload["method"] == "MULTIPART"
    assert upload["part_size"] == MULTIPART_PART_SIZE
    assert [p["part_number"] for p in upload["parts"]] == list(
        range(1, -(-len(data) // MULTIPART_PART_SIZE) + 1)
    )
    parts = put_parts(client, upload, data)

    without_parts = client.complete(presigned["document_id"])
    assert without_parts.status_code == 400
    assert without_parts.json()["error"] == "parts_required"
    completed = client.http.post(f"/v1/uploads/{presigned['document_id']}/complete", json={"parts": parts})
    assert completed.status_code == 202, completed.text
    again = client.http.post(f"/v1/uploads/{presigned['document_id']}/complete", json={"parts": parts})
    assert again.json()["task_id"] == completed.json()["task_id"]

    document = client.wait(presigned["document_id"])
    assert document["status"] == "indexed", document["error"]
    assert document["size"] == len(data)
    assert client.search("limestone caves survey", k=1)[0]["document_id"] == presigned["document_id"]


def test_missing_part_is_refused_and_can_be_retried(client: ChuteClient) -> None:
    data = big_docx(MULTIPART_THRESHOLD + MULTIPART_PART_SIZE // 2, SENTENCE)
    presigned = client.presign("partial.docx", len(data)).json()
    parts = put_parts(client, presigned["upload"], data)

    short = client.http.post(
        f"/v1/uploads/{presigned['document_id']}/complete",
        json={"parts": [{"part_number": 1, "etag": '"not-the-etag"'}]},
    )

    assert short.status_code == 409
    assert short.json()["error"] == "upload_incomplete"
    assert client.document(presigned["document_id"])["status"] == "awaiting_upload"
    fixed = client.http.post(f"/v1/uploads/{presigned['document_id']}/complete", json={"parts": parts})
    assert fixed.status_code == 202


def test_cancel_aborts_the_multipart_upload(client: ChuteClient, bucket: Bucket) -> None:
    presigned = client.presign("abandoned.docx", MULTIPART_THRESHOLD + 1).json()
    upload_id = presigned["upload"]["upload_id"]
    assert upload_id in bucket.open_upload_ids()

    answer = client.http.post(f"/v1/documents/{presigned['document_id']}/cancel")

    assert answer.status_code == 202
    assert answer.json()["status"] == "cancelled"
    assert upload_id not in bucket.open_upload_ids()
