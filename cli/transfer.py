"""Sending a file's bytes to the bucket: the presigned form POST, or presigned multipart parts.

Bodies are streamed from disk, so memory stays flat whatever the file size; failed attempts are
retried with backoff and their bytes taken back from the progress count.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cli.client import CliError, transport_error

if TYPE_CHECKING:
    import httpx

READ_SIZE = 256 * 1024
RETRY_DELAY = 0.5  # seconds before the first retry; doubles for each next one


class Cancelled(Exception):
    """The user pressed Ctrl-C; transfers stop at their next read."""


class TransferError(CliError):
    """Bytes did not reach the bucket."""


class LocalFile(Protocol):
    path: Path
    name: str  # what the server is told
    size: int


def _file_bytes(
    path: Path, offset: int, length: int, on_bytes: Callable[[int], None], cancel: threading.Event
) -> Iterator[bytes]:
    """`length` bytes of the file from `offset`, reporting each block; the file must not shrink."""
    with path.open("rb") as handle:
        handle.seek(offset)
        left = length
        while left > 0:
            if cancel.is_set():
                raise Cancelled
            block = handle.read(min(READ_SIZE, left))
            if not block:
                raise TransferError(f"{path} got shorter while it was being uploaded.")
            left -= len(block)
            on_bytes(len(block))
            yield block


def _bucket_error(response: httpx.Response) -> str:
    """S3 answers errors as XML: its Code and Message, or the start of whatever came back."""
    import re

    text = response.text
    code = re.search(r"<Code>(.*?)</Code>", text, re.S)
    message = re.search(r"<Message>(.*?)</Message>", text, re.S)
    if code or message:
        parts = [m.group(1).strip() for m in (code, message) if m]
        return f"the bucket refused the upload (HTTP {response.status_code}): {': '.join(parts)}"
    snippet = " ".join(text.split())[:200]
    return f"the bucket refused the upload (HTTP {response.status_code})" + (
        f": {snippet}" if snippet else ""
    )


def _retryable(response: httpx.Response) -> bool:
    return response.status_code >= 500 or response.status_code in (408, 429)


def _send(
    attempt: Callable[[], httpx.Response],
    *,
    retries: int,
    undo: Callable[[], None],
    cancel: threading.Event,
    where: str,
) -> httpx.Response:
    """Run `attempt`, retrying transport errors and 5xx/408/429 up to `retries` times with backoff."""
    import httpx

    for number in range(retries + 1):
        last = number == retries
        try:
            response = attempt()
        except httpx.TransportError as error:
            undo()
            if last:
                raise transport_error(error, where) from None
        else:
            if response.status_code < 300:
                return response
            undo()
            if last or not _retryable(response):
                raise TransferError(_bucket_error(response))
        if cancel.wait(min(RETRY_DELAY * 2**number, 8.0)):
            raise Cancelled
    raise AssertionError("unreachable")  # pragma: no cover


def _form_filename(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in base) or "file"


def post_form(
    http: httpx.Client,
    upload: dict[str, Any],
    job: LocalFile,
    on_bytes: Callable[[int], None],
    cancel: threading.Event,
    *,
    retries: int = 3,
) -> None:
    """The presigned form POST: the policy's fields, then the file last, streamed with a Content-Length."""
    boundary = secrets.token_hex(16)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in upload.get("fields", {}).items()
    )
    content_type = upload.get("fields", {}).get("Content-Type", "application/octet-stream")
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_form_filename(job.name)}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + job.size + len(tail)),
    }
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        on_bytes(n)

    def body() -> Iterator[bytes]:
        yield head
        yield from _file_bytes(job.path, 0, job.size, count, cancel)
        yield tail

    def undo() -> None:
        nonlocal sent
        on_bytes(-sent)
        sent = 0

    _send(
        lambda: http.post(upload["url"], content=body(), headers=headers),
        retries=retries,
        undo=undo,
        cancel=cancel,
        where="the bucket",
    )


def put_parts(
    http: httpx.Client,
    upload: dict[str, Any],
    job: LocalFile,
    on_bytes: Callable[[int], None],
    cancel: threading.Event,
    *,
    parallel: int = 4,
    retries: int = 3,
) -> list[dict[str, Any]]:
    """PUT each part to its presigned URL (`parallel` at a time); the parts' ETags, in order."""
    part_size = int(upload["part_size"])
    parts = sorted(upload["parts"], key=lambda p: int(p["part_number"]))
    if part_size <= 0 or not parts:
        raise TransferError("the server's multipart answer has no parts.")
    ranges: list[tuple[dict[str, Any], int, int]] = []
    for part in parts:
        offset = (int(part["part_number"]) - 1) * part_size
        length = min(part_size, job.size - offset)
        if length <= 0:
            raise TransferError("the server's multipart answer has more parts than the file needs.")
        ranges.append((part, offset, length))
    if sum(length for _, _, length in ranges) != job.size:
        raise TransferError("the server's multipart parts do not cover the whole file.")

    stop = threading.Event()  # one part failed for good: the others stop too

    def watch() -> None:
        while not stop.is_set():
            if cancel.wait(0.2):
                stop.set()

    def put(part: dict[str, Any], offset: int, length: int) -> dict[str, Any]:
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            on_bytes(n)

        def undo() -> None:
            nonlocal sent
            on_bytes(-sent)
            sent = 0

        number = int(part["part_number"])
        response = _send(
            lambda: http.put(
                part["url"],
                content=_file_bytes(job.path, offset, length, count, stop),
                headers={"Content-Length": str(length)},
            ),
            retries=retries,
            undo=undo,
            cancel=stop,
            where=f"the bucket (part {number})",
        )
        etag = response.headers.get("ETag")
        if not etag:
            raise TransferError(
                f"the bucket answered part {number} without an ETag header "
                "(a browser-facing bucket must expose ETag in its CORS rule)."
            )
        return {"part_number": number, "etag": etag}

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="chute-part") as pool:
            futures = [pool.submit(put, part, offset, length) for part, offset, length in ranges]
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            errors = [f.exception() for f in finished if f.exception() is not None]
            if errors:
                stop.set()
                real = [e for e in errors if not isinstance(e, Cancelled)]
                raise (real or errors)[0]  # type: ignore[misc]
            done = [future.result() for future in futures]
    finally:
        stop.set()
        watcher.join()
    if cancel.is_set():
        raise Cancelled
    return done
