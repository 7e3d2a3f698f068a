"""The bucket: presigned uploads, object checks, streamed downloads, deletes, and its errors.

Works against any S3-compatible store (SeaweedFS, MinIO, AWS S3). The store's own checks are defence
in depth (docs/architecture.md#i5): callers check sizes and leading bytes themselves.

Every failure of the store leaves this module as one of the typed errors below, never as a botocore
error: `StorageUnavailable` (it did not answer, or answered 5xx: try again later), `ObjectMissing`,
`ObjectChanged` (an `IfMatch` on the verified ETag failed) or `StorageRefused` (any other refusal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as TransportError

from shared.errors import AppError, ErrorCode
from shared.settings import Settings

DOWNLOAD_CHUNK = 1024 * 1024
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_BUSY = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"})


class StorageError(AppError):
    """The bucket refused or failed an operation. At the API: 503, since the client can do nothing."""

    code = ErrorCode.STORAGE_ERROR

    def __init__(self, message: str, *, s3_code: str = "") -> None:
        super().__init__(message)
        self.s3_code = s3_code


class StorageUnavailable(StorageError):
    """The bucket did not answer, or answered that it cannot serve now: worth trying again later."""

    code = ErrorCode.STORAGE_UNAVAILABLE


class StorageRefused(StorageError):
    """The bucket answered no (`s3_code` says why: AccessDenied, NoSuchUpload, InvalidPart ...)."""


class ObjectMissing(StorageError):
    code = ErrorCode.UPLOAD_NOT_FOUND


class ObjectChanged(StorageError):
    """The object is no longer the one that was verified: its ETag differs."""

    code = ErrorCode.OBJECT_CHANGED


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn botocore's and urllib3's exceptions from the calls inside into the typed errors."""
    try:
        yield
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        message = str(details.get("Message") or code)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _MISSING:
            raise ObjectMissing(f"{what}: the object is not in the bucket.", s3_code=code) from error
        if code == "PreconditionFailed" or status == 412:
            raise ObjectChanged(f"{what}: the object changed since it was verified.", s3_code=code) from error
        if status >= 500 or code in _BUSY:
            raise StorageUnavailable(
                f"The bucket is not answering ({what}: {code}); try again shortly.", s3_code=code
            ) from error
        raise StorageRefused(f"The bucket refused {what} ({code}: {message}).", s3_code=code) from error
    except (BotoCoreError, TransportError) as error:
        raise StorageUnavailable(
            f"The bucket is not answering ({what}: {type(error).__name__}); try again shortly."
        ) from error


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    etag: str
    content_type: str | None


@dataclass(frozen=True, slots=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: datetime


class Storage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket

    def _client(self, endpoint_url: str | None) -> Any:
        s = self.settings
        secret = s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else None
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # Newer botocore signs checksum headers into presigned URLs that MinIO and others reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=20,
        )
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=s.s3_region,
            aws_access_key_id=s.s3_access_key_id,
            aws_secret_access_key=secret,
            config=config,
        )

    @cached_property
    def client(self) -> Any:
        return self._client(self.settings.s3_endpoint_url)

    @cached_property
    def public_client(self) -> Any:
        """Signs URLs for the address browsers and clients use to reach the bucket."""
        public = self.settings.s3_public_endpoint_url
        return self._client(public) if public else self.client

    # -- uploads -------------------------------------------------------------------------------

    def presign_post(self, key: str, content_type: str, max_size: int) -> PresignedPost:
        """A POST form that only accepts this key, this Content-Type and 1..max_size bytes (signed
        locally: no request to the bucket)."""
        expires = self.settings.presign_expires_seconds
        post = self.public_client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_size],
            ],
            ExpiresIn=expires,
        )
        return PresignedPost(
            url=post["url"],
            fields=post["fields"],
            expires_at=datetime.now(UTC) + timedelta(seconds=expires),
        )

    def start_multipart(self, key: str, content_type: str) -> str:
        with _translated("starting a multipart upload"):
            answer = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )
        return str(answer["UploadId"])

    def presign_parts(self, key: str, upload_id: str, part_sizes: list[int]) -> list[str]:
        """One presigned PUT URL per part, numbered from 1. Each part's size is signed into its URL
        (Content-Length is a signed header), so the bucket refuses a part of any other size."""
        return [
            self.public_client.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "UploadId": upload_id,
                    "PartNumber": number,
                    "ContentLength": size,
                },
                ExpiresIn=self.settings.presign_expires_seconds,
            )
            for number, size in enumerate(part_sizes, start=1)
        ]

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        with _translated("assembling the upload"):
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]},
            )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            with _translated("aborting a multipart upload"):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except StorageRefused as error:
            if error.s3_code != "NoSuchUpload":
                raise

    # -- checks --------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        try:
            with _translated("checking the object"):
                answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ObjectMissing:
            return None
        return ObjectInfo(
            size=int(answer["ContentLength"]),
            etag=str(answer["ETag"]).strip('"'),
            content_type=answer.get("ContentType"),
        )

    def read_head(self, key: str, etag: str, length: int = 8192) -> bytes:
        """The object's first `length` bytes, if it is still the object with `etag`."""
        with _translated("reading the object's first bytes"):
            answer = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}", IfMatch=f'"{etag}"'
            )
            data: bytes = answer["Body"].read()
        return data[:length]

    # -- reads and writes ----------------------------------------------------------------------

    def download(self, key: str, etag: str, destination: Path) -> int:
        """Stream the object to a local file without holding it in memory, if it is still the object
        with `etag` (the one that was verified); `ObjectChanged` if not. Returns bytes written."""
        written = 0
        with _translated("downloading the object"):
            answer = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=f'"{etag}"')
            with destination.open("wb") as out:
                for block in answer["Body"].iter_chunks(DOWNLOAD_CHUNK):
                    out.write(block)
                    written += len(block)
        return written

    def delete(self, key: str) -> None:
        with _translated("deleting the object"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def ensure_bucket(self, cors_origins: list[str] | None = None) -> None:
        """Create the bucket if needed and let browsers POST to it (development stacks)."""
        with _translated("creating the bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self.client.create_bucket(Bucket=self.bucket)
            if cors_origins:
                self.client.put_bucket_cors(
                    Bucket=self.bucket,
                    CORSConfiguration={
                        "CORSRules": [
                            {
                                "AllowedOrigins": cors_origins,
                                "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
                                "AllowedHeaders": ["*"],
                                "ExposeHeaders": ["ETag"],
                                "MaxAgeSeconds": 3600,
                            }
                        ]
                    },
                )

    def ping(self) -> None:
        with _translated("checking the bucket"):
            self.client.head_bucket(Bucket=self.bucket)

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> str:
        """Send one part from this process (proxied uploads); returns its ETag."""
        with _translated("sending a part"):
            answer = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        return str(answer["ETag"])


class StreamingUpload:
    """Writes a stream of unknown length into one object with S3 multipart upload.

    Memory stays bounded by one part whatever the object's size; nothing touches local disk.
    """

    PART_SIZE = 8 * 1024 * 1024  # S3's minimum part is 5 MiB

    def __init__(self, storage: Storage, key: str, content_type: str) -> None:
        self.storage = storage
        self.key = key
        self.buffer = bytearray()
        self.parts: list[tuple[int, str]] = []
        self.size = 0
        self.upload_id = storage.start_multipart(key, content_type)

    def write(self, data: bytes) -> None:
        self.buffer += data
        self.size += len(data)
        if len(self.buffer) >= self.PART_SIZE:
            self._send_part()

    def _send_part(self) -> None:
        number = len(self.parts) + 1
        part, self.buffer = self.buffer, bytearray()  # handed over, not copied
        self.parts.append((number, self.storage.upload_part(self.key, self.upload_id, number, part)))

    def finish(self) -> None:
        if self.buffer or not self.parts:
            self._send_part()
        self.storage.complete_multipart(self.key, self.upload_id, self.parts)

    def abort(self) -> None:
        self.storage.abort_multipart(self.key, self.upload_id)
