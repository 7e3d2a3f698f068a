"""The bucket: presigned uploads, object checks, streamed downloads, deletes.

Works against any S3-compatible store (AWS S3, MinIO, moto's server). The store itself is trusted
to police nothing (DESIGN.md invariant 5): callers check sizes and leading bytes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.client import Config
from botocore.exceptions import ClientError

from shared.settings import Settings

DOWNLOAD_CHUNK = 1024 * 1024


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
        """A POST form that only accepts this key, this Content-Type and 1..max_size bytes."""
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
        answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return str(answer["UploadId"])

    def presign_parts(self, key: str, upload_id: str, part_count: int) -> list[str]:
        """One presigned PUT URL per part, numbered from 1."""
        return [
            self.public_client.generate_presigned_url(
                "upload_part",
                Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                ExpiresIn=self.settings.presign_expires_seconds,
            )
            for number in range(1, part_count + 1)
        ]

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise

    # -- checks --------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            size=int(answer["ContentLength"]),
            etag=str(answer["ETag"]).strip('"'),
            content_type=answer.get("ContentType"),
        )

    def read_head(self, key: str, length: int = 8192) -> bytes:
        answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}")
        data: bytes = answer["Body"].read()
        return data[:length]

    # -- reads and writes ----------------------------------------------------------------------

    def download(self, key: str, destination: Path) -> int:
        """Stream an object to a local file without holding it in memory. Returns bytes written."""
        answer = self.client.get_object(Bucket=self.bucket, Key=key)
        written = 0
        with destination.open("wb") as out:
            for block in answer["Body"].iter_chunks(DOWNLOAD_CHUNK):
                out.write(block)
                written += len(block)
        return written

    def put(self, key: str, body: bytes | BinaryIO, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def ensure_bucket(self, cors_origins: list[str] | None = None) -> None:
        """Create the bucket if needed and let browsers POST to it (development stacks)."""
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
        self.client.head_bucket(Bucket=self.bucket)


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
        answer = self.storage.client.upload_part(
            Bucket=self.storage.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part
        )
        self.parts.append((number, answer["ETag"]))

    def finish(self) -> None:
        if self.buffer or not self.parts:
            self._send_part()
        self.storage.complete_multipart(self.key, self.upload_id, self.parts)

    def abort(self) -> None:
        self.storage.abort_multipart(self.key, self.upload_id)
