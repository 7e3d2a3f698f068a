"""The bucket (SeaweedFS, as the stack runs it) refuses what the presigned form and part URLs do not
allow, before Chute sees anything; Chute's own checks at `complete` remain for what a bucket lets in."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from infra.stack import Stack
from shared.settings import Settings
from shared.storage import Storage, StorageRefused
from tests.conftest import MULTIPART_PART_SIZE, MULTIPART_THRESHOLD
from tests.helpers import Bucket, ChuteClient

TEXT = b"A plain note for the bucket to accept or refuse.\n"


def chute_storage(stack: Stack, **settings: Any) -> Storage:
    """Storage signing as Chute does with the stack's credentials (to change one setting, like expiry)."""
    env = stack.env
    signing = {
        "s3_endpoint_url": env["CHUTE_S3_ENDPOINT_URL"],
        "s3_access_key_id": env["CHUTE_S3_ACCESS_KEY_ID"],
        "s3_secret_access_key": env["CHUTE_S3_SECRET_ACCESS_KEY"],
    }
    return Storage(Settings(**{**signing, **settings}))


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert f"<Code>{code}</Code>" in answer.text, answer.text


def presigned_post(client: ChuteClient) -> dict[str, Any]:
    answer = client.presign("note.txt", len(TEXT))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch"),
        ({"key": "another-tenant/doc/note.txt"}, 403, "AccessDenied"),
        ({"Content-Type": "text/html"}, 403, "AccessDenied"),
    ],
    ids=["tampered-signature", "another-key", "another-content-type"],
)
def test_the_bucket_refuses_a_form_changed_after_signing(
    client: ChuteClient, bucket: Bucket, change: dict[str, str], status: int, code: str
) -> None:
    presigned = presigned_post(client)
    upload = presigned["upload"]

    answer = client.post_to_bucket({**upload, "fields": {**upload["fields"], **change}}, TEXT)

    refused(answer, status, code)
    assert not {presigned["object_key"], "another-tenant/doc/note.txt"} & bucket.object_keys()
    assert client.complete(presigned["document_id"]).json()["error"] == "upload_not_found"


def test_the_bucket_refuses_a_body_over_the_policy_limit(stack: Stack, bucket: Bucket) -> None:
    post = chute_storage(stack).presign_post("limits/doc/big.txt", "text/plain", max_size=1024)

    answer = httpx.post(post.url, data=post.fields, files={"file": ("big.txt", b"x" * 1025)})

    refused(answer, 400, "EntityTooLarge")
    assert "limits/doc/big.txt" not in bucket.object_keys()


def test_the_bucket_refuses_an_expired_form(stack: Stack, bucket: Bucket) -> None:
    storage = chute_storage(stack, presign_expires_seconds=1)
    post = storage.presign_post("limits/doc/late.txt", "text/plain", max_size=1024)
    time.sleep(2)

    answer = httpx.post(post.url, data=post.fields, files={"file": ("late.txt", TEXT)})

    refused(answer, 403, "AccessDenied")
    assert "expired" in answer.text
    assert "limits/doc/late.txt" not in bucket.object_keys()


def test_the_bucket_refuses_requests_signed_with_another_secret(stack: Stack) -> None:
    with pytest.raises(StorageRefused) as error:
        chute_storage(stack, s3_secret_access_key="not-the-secret").ping()

    assert error.value.status == 503  # at the API: the bucket refuses Chute itself, nothing to retry


def test_a_part_url_only_takes_a_part_of_its_size(client: ChuteClient) -> None:
    size = MULTIPART_THRESHOLD + 1024
    answer = client.presign("big.txt", size)
    assert answer.status_code == 201, answer.text
    upload = answer.json()["upload"]
    first, last = upload["parts"][0]["url"], upload["parts"][-1]["url"]
    last_size = size - MULTIPART_PART_SIZE * (len(upload["parts"]) - 1)

    too_big = client.bucket_http.put(first, content=b"x" * (MULTIPART_PART_SIZE + 1))
    too_small = client.bucket_http.put(last, content=b"x" * (last_size - 1))

    refused(too_big, 403, "SignatureDoesNotMatch")
    refused(too_small, 403, "SignatureDoesNotMatch")
    assert client.bucket_http.put(last, content=b"x" * last_size).status_code == 200


def test_chute_still_checks_an_object_an_administrator_put_there(client: ChuteClient, bucket: Bucket) -> None:
    """The bucket takes anything from its own credentials: Chute's checks at `complete` stay."""
    presigned = presigned_post(client)
    bucket.put(presigned["object_key"], b"\x00\x01binary, and not the declared size", "text/plain")

    answer = client.complete(presigned["document_id"])

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "size_mismatch"
    assert presigned["object_key"] not in bucket.object_keys()


def test_reindex_of_a_cancelled_upload_checks_the_object_first(client: ChuteClient, bucket: Bucket) -> None:
    """Cancelled before `complete`, its object was never checked: reindex checks it as `complete` would."""
    presigned = client.presign("report.pdf", len(TEXT)).json()
    assert client.http.post(f"/v1/documents/{presigned['document_id']}/cancel").status_code == 202
    assert client.post_to_bucket(presigned["upload"], TEXT).status_code == 204  # the form is still valid

    answer = client.http.post(f"/v1/documents/{presigned['document_id']}/reindex")

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "type_mismatch"
    assert client.document(presigned["document_id"])["status"] == "cancelled"
