"""Storage's contract with its callers: every failure of the bucket leaves `shared.storage` as one of its
typed errors. In-process S3 (moto's `mock_aws`) for what a bucket answers; a closed port for a bucket
that does not answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from infra.stack import free_port
from shared.settings import Settings
from shared.storage import ObjectChanged, ObjectMissing, Storage, StorageUnavailable


@pytest.fixture
def storage() -> Iterator[Storage]:
    with mock_aws():
        bucket = Storage(Settings(s3_access_key_id="unit", s3_secret_access_key="unit-secret"))
        bucket.ensure_bucket()
        yield bucket


def test_a_missing_object_heads_as_none_and_reads_as_object_missing(storage: Storage, tmp_path: Path) -> None:
    assert storage.head("tenant/doc/none.txt") is None
    with pytest.raises(ObjectMissing):
        storage.download("tenant/doc/none.txt", "0" * 32, tmp_path / "out")


def _put(storage: Storage, key: str, body: bytes) -> None:
    """An object as a client's upload leaves it (Chute itself never writes objects)."""
    storage.client.put_object(Bucket=storage.bucket, Key=key, Body=body, ContentType="text/plain")


def test_a_replaced_object_is_not_read_under_the_verified_etag(storage: Storage, tmp_path: Path) -> None:
    _put(storage, "tenant/doc/a.txt", b"the verified bytes")
    verified = storage.head("tenant/doc/a.txt")
    assert verified is not None
    _put(storage, "tenant/doc/a.txt", b"bytes put there later")

    with pytest.raises(ObjectChanged):
        storage.download("tenant/doc/a.txt", verified.etag, tmp_path / "out")
    with pytest.raises(ObjectChanged):
        storage.read_head("tenant/doc/a.txt", verified.etag)

    current = storage.head("tenant/doc/a.txt")
    assert current is not None
    assert storage.download("tenant/doc/a.txt", current.etag, tmp_path / "out") == 21
    assert (tmp_path / "out").read_bytes() == b"bytes put there later"


def test_aborting_an_upload_the_bucket_no_longer_has_is_not_an_error(storage: Storage) -> None:
    upload_id = storage.start_multipart("tenant/doc/big.pdf", "application/pdf")
    storage.abort_multipart("tenant/doc/big.pdf", upload_id)
    storage.abort_multipart("tenant/doc/big.pdf", upload_id)  # a retried cancel, say


def test_a_bucket_that_does_not_answer_is_storage_unavailable_with_a_503() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = Settings(s3_endpoint_url=closed, s3_access_key_id="unit", s3_secret_access_key="unit-secret")
    storage = Storage(settings)
    for call in (lambda: storage.head("k"), storage.ping, lambda: storage.start_multipart("k", "text/plain")):
        with pytest.raises(StorageUnavailable) as down:
            call()
        assert (down.value.status, down.value.code) == (503, "storage_unavailable")
