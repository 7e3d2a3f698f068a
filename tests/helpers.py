"""A small client for the Chute API as users drive it: presign, upload to the bucket, complete, wait."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINAL = {"indexed", "failed", "cancelled", "expired"}


class ChuteClient:
    def __init__(self, base_url: str, key: str) -> None:
        self.key = key
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        self.bucket_http = httpx.Client(timeout=60)

    def __enter__(self) -> ChuteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.bucket_http.close()

    def presign(self, filename: str, size: int, **extra: Any) -> httpx.Response:
        return self.http.post("/v1/uploads", json={"filename": filename, "size": size, **extra})

    def post_to_bucket(self, upload: dict[str, Any], data: bytes, filename: str = "file") -> httpx.Response:
        return self.bucket_http.post(upload["url"], data=upload["fields"], files={"file": (filename, data)})

    def complete(self, document_id: str) -> httpx.Response:
        return self.http.post(f"/v1/uploads/{document_id}/complete", json={})

    def upload(self, filename: str, data: bytes, **extra: Any) -> dict[str, Any]:
        """Presign, upload straight to the bucket, complete. Returns the complete answer."""
        presigned = self.presign(filename, len(data), **extra)
        assert presigned.status_code == 201, presigned.text
        answer = presigned.json()
        stored = self.post_to_bucket(answer["upload"], data, filename)
        assert stored.status_code in (200, 201, 204), stored.text
        completed = self.complete(answer["document_id"])
        assert completed.status_code == 202, completed.text
        return dict(completed.json())

    def document(self, document_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/documents/{document_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait(self, document_id: str, timeout: float = 180, until: set[str] = FINAL) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            document = self.document(document_id)
            if document["status"] in until:
                return document
            if time.monotonic() > deadline:
                raise AssertionError(f"document still {document['status']} after {timeout} s: {document}")
            time.sleep(0.2)

    def ingest(self, filename: str, data: bytes, expect: str = "indexed", **extra: Any) -> dict[str, Any]:
        """Upload and wait for a final state, which must be `expect`."""
        document = self.wait(self.upload(filename, data, **extra)["document_id"])
        assert document["status"] == expect, f"{filename}: {document['status']} {document['error']}"
        return document

    def search(self, query: str, **extra: Any) -> list[dict[str, Any]]:
        answer = self.http.post("/v1/search", json={"query": query, **extra})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["results"])


class Bucket:
    """The stack's bucket seen with its own credentials, as an administrator sees it: to check what
    Chute left there, or to change an object behind Chute's back."""

    def __init__(self, env: dict[str, str]) -> None:
        import boto3

        self.s3 = boto3.client(
            "s3",
            endpoint_url=env["CHUTE_S3_ENDPOINT_URL"],
            region_name=env["CHUTE_S3_REGION"],
            aws_access_key_id=env["CHUTE_S3_ACCESS_KEY_ID"],
            aws_secret_access_key=env["CHUTE_S3_SECRET_ACCESS_KEY"],
        )

    def put(self, key: str, data: bytes, content_type: str = "text/plain") -> None:
        self.s3.put_object(Bucket="chute", Key=key, Body=data, ContentType=content_type)

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket="chute", Key=key)["Body"].read())

    def object_keys(self) -> set[str]:
        return {item["Key"] for item in self.s3.list_objects_v2(Bucket="chute").get("Contents", [])}

    def open_upload_ids(self) -> set[str]:
        return {u["UploadId"] for u in self.s3.list_multipart_uploads(Bucket="chute").get("Uploads", [])}
