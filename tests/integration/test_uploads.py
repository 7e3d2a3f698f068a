"""Presign, upload and complete as docs/http-contract.md defines them, including every way they refuse
bad input."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from tests.helpers import Bucket, ChuteClient

PDF_BYTES = b"%PDF-1.4\n% fake but only the leading bytes matter for the check\n"


def test_presign_answers_a_post_form_pinned_to_a_server_made_key(client: ChuteClient) -> None:
    answer = client.presign("../../etc/Quarterly report (final).txt", 42, metadata={"team": "legal"})

    assert answer.status_code == 201, answer.text
    body = answer.json()
    document_id = body["document_id"]
    tenant = body["object_key"].split("/")[0]
    assert body["object_key"] == f"{tenant}/{document_id}/Quarterly_report_final_.txt"
    assert body["status"] == "awaiting_upload"
    assert body["upload"]["method"] == "POST"
    assert body["upload"]["fields"]["key"] == body["object_key"]
    assert body["upload"]["fields"]["Content-Type"] == "text/plain"
    assert "policy" in body["upload"]["fields"]
    assert body["complete_url"] == f"/v1/uploads/{document_id}/complete"
    assert body["status_url"] == f"/v1/documents/{document_id}"
    assert client.document(document_id)["status"] == "awaiting_upload"


def test_policy_pins_size_range_and_content_type(client: ChuteClient) -> None:
    import base64
    import json

    fields = client.presign("a.md", 10).json()["upload"]["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 100 * 1024 * 1024] in conditions
    assert {"Content-Type": "text/markdown"} in conditions
    assert {"key": fields["key"]} in conditions


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        ({"filename": "tool.exe", "size": 10}, 415, "unsupported_type"),
        ({"filename": "big.pdf", "size": 100 * 1024 * 1024 + 1}, 413, "too_large"),
        ({"filename": "empty.txt", "size": 0}, 400, "empty_file"),
        ({"filename": "a.txt"}, 422, "validation_error"),
        ({"filename": "a.txt", "size": -1}, 422, "validation_error"),
        (
            {"filename": "a.txt", "size": 5, "chunking": {"chunk_size": 100, "overlap": 100}},
            422,
            "validation_error",
        ),
    ],
)
def test_bad_upload_requests_are_refused_with_a_clear_error(
    client: ChuteClient, request_body: dict[str, object], status: int, code: str
) -> None:
    answer = client.http.post("/v1/uploads", json=request_body)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code
    assert answer.json()["detail"]


def test_invalid_json_is_a_422(client: ChuteClient) -> None:
    answer = client.http.post(
        "/v1/uploads", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_error"


def test_complete_before_the_object_arrives_is_a_409_and_changes_nothing(client: ChuteClient) -> None:
    document_id = client.presign("later.txt", 5).json()["document_id"]

    answer = client.complete(document_id)

    assert answer.status_code == 409
    assert answer.json()["error"] == "upload_not_found"
    assert client.document(document_id)["status"] == "awaiting_upload"


def test_complete_twice_answers_the_same_task_and_processes_once(client: ChuteClient) -> None:
    data = b"Completing twice must not queue the document twice.\n"
    presigned = client.presign("twice.txt", len(data)).json()
    client.post_to_bucket(presigned["upload"], data)

    first = client.complete(presigned["document_id"])
    second = client.complete(presigned["document_id"])

    assert first.status_code == second.status_code == 202
    assert first.json()["task_id"] == second.json()["task_id"]
    document = client.wait(presigned["document_id"])
    assert document["status"] == "indexed"
    assert document["attempts"] == 1
    third = client.complete(presigned["document_id"])
    assert third.status_code == 202 and third.json()["task_id"] == first.json()["task_id"]


def test_declared_size_must_match_the_object(client: ChuteClient, bucket: Bucket) -> None:
    presigned = client.presign("short.txt", 100).json()
    client.post_to_bucket(presigned["upload"], b"only forty bytes of text in this object")

    answer = client.complete(presigned["document_id"])

    assert answer.status_code == 422
    assert answer.json()["error"] == "size_mismatch"
    document = client.document(presigned["document_id"])
    assert document["status"] == "failed"
    assert document["error"]["code"] == "size_mismatch"
    assert presigned["object_key"] not in bucket.object_keys()


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("report.pdf", None),  # a ZIP named .pdf, filled in below
        ("letter.docx", PDF_BYTES),
        ("notes.txt", bytes(range(256)) * 8),
    ],
)
def test_leading_bytes_must_match_the_type(
    client: ChuteClient, bucket: Bucket, filename: str, data: bytes | None
) -> None:
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "hello")
        data = buffer.getvalue()
    presigned = client.presign(filename, len(data)).json()
    client.post_to_bucket(presigned["upload"], data)

    answer = client.complete(presigned["document_id"])

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "type_mismatch"
    assert client.document(presigned["document_id"])["error"]["code"] == "type_mismatch"
    assert presigned["object_key"] not in bucket.object_keys()


def test_batch_presigns_good_files_and_rejects_bad_ones(client: ChuteClient) -> None:
    answer = client.http.post(
        "/v1/uploads/batch",
        json={
            "files": [
                {"filename": "a.txt", "size": 3},
                {"filename": "b.exe", "size": 3},
                {"filename": "c.md", "size": 0},
                {"filename": "d.csv", "size": 9},
            ]
        },
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["batch_size"] == 4
    uploads = body["uploads"]
    assert uploads[0]["status"] == "awaiting_upload" and uploads[0]["upload"]["method"] == "POST"
    assert uploads[1] == {
        "filename": "b.exe",
        "status": "rejected",
        "error": {"code": "unsupported_type", "message": uploads[1]["error"]["message"]},
    }
    assert uploads[2]["error"]["code"] == "empty_file"
    assert uploads[3]["object_key"].endswith("/d.csv")


def test_batch_of_more_than_100_files_is_refused(client: ChuteClient) -> None:
    files = [{"filename": f"{i}.txt", "size": 1} for i in range(101)]
    assert client.http.post("/v1/uploads/batch", json={"files": files}).status_code == 422


def test_proxied_upload_streams_into_the_bucket_and_indexes(client: ChuteClient, bucket: Bucket) -> None:
    text = "Proxied uploads reach the bucket through the API for clients behind strict firewalls.\n"
    data = (text * 200).encode()

    answer = client.http.post(
        "/v1/documents",
        files={"file": ("firewall notes.txt", data, "text/plain")},
        data={"metadata": '{"source": "proxy"}'},
    )

    assert answer.status_code == 202, answer.text
    document = client.wait(answer.json()["document_id"])
    assert document["status"] == "indexed"
    assert document["size"] == len(data)
    assert document["metadata"] == {"source": "proxy"}
    assert document["object_key"].endswith("/firewall_notes.txt")
    assert document["object_key"] in bucket.object_keys()


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        ({"file": ("empty.txt", b"", "text/plain")}, 400, "empty_file"),
        ({"file": ("virus.exe", b"MZ....", "application/octet-stream")}, 415, "unsupported_type"),
        ({"other": ("a.txt", b"hello", "text/plain")}, 400, "missing_file"),
        ({"file": ("fake.pdf", b"not a pdf at all", "application/pdf")}, 422, "type_mismatch"),
    ],
)
def test_proxied_upload_refuses_bad_files(
    client: ChuteClient, files: dict[str, tuple[str, bytes, str]], status: int, code: str
) -> None:
    answer = client.http.post("/v1/documents", files=files)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code


def test_routes_need_a_valid_key(anonymous: httpx.Client) -> None:
    missing = anonymous.get("/v1/documents")
    wrong = anonymous.get("/v1/documents", headers={"Authorization": "Bearer chute_not-a-real-key"})

    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.json()["error"] == "unauthorized"
        assert answer.json()["detail"]
