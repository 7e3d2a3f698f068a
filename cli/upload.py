"""`chute upload`: find the files, presign them, send the bytes straight to the bucket, complete, and
follow each document through the pipeline.

Below the server's multipart threshold an upload is a presigned form POST (`upload.method == "POST"`);
above it the server answers `MULTIPART` with one presigned PUT URL per part (cli/transfer.py sends
both).
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cli.client import FINAL_STATES, ApiError, ChuteApi, CliError, Unreachable
from cli.transfer import Cancelled, TransferError, post_form, put_parts

if TYPE_CHECKING:
    import httpx

BATCH_LIMIT = 100  # files per POST /v1/uploads/batch (docs/http-contract.md)


# -- the files -------------------------------------------------------------------------------------


@dataclass
class FileJob:
    """One local file and what became of it."""

    path: Path
    name: str  # what the server is told (the path below the folder given, or the file's name)
    size: int
    document_id: str | None = None
    upload: dict[str, Any] | None = None
    status: str = "pending"  # pending, uploading, then the document's status, or rejected
    step: str | None = None
    progress: int = 0
    chunk_count: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    sent: int = 0
    poll_failures: int = 0

    def fail(self, code: str, message: str, status: str = "failed") -> None:
        self.status = status
        self.error_code = code
        self.error_message = message

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES or self.status == "rejected"

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "filename": self.name,
            "size": self.size,
            "document_id": self.document_id,
            "status": self.status,
            "chunk_count": self.chunk_count,
            "error": {"code": self.error_code, "message": self.error_message} if self.error_code else None,
        }


def _matches(patterns: list[str], *names: str) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns for name in names)


def collect_files(
    paths: list[Path], *, include: list[str], exclude: list[str], hidden: bool = False
) -> list[FileJob]:
    """Files named and files found below folders (recursively, sorted), filtered by the globs.

    A glob matches a file's name or its path below the folder given (case-insensitive); `--exclude`
    on a folder's name or path skips the whole folder. Hidden files and folders are skipped in
    folders unless `hidden`. A path that does not exist is an error before anything is sent.
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"No such file or folder: {', '.join(missing)}", exit_code=2)

    found: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_dir():
            for folder, dirs, files in os.walk(root):
                here = Path(folder)
                rel_dir = here.relative_to(root)
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if (hidden or not d.startswith("."))
                    and not _matches(exclude, d, (rel_dir / d).as_posix())
                )
                for name in sorted(files):
                    if not hidden and name.startswith("."):
                        continue
                    found.append((here / name, (rel_dir / name).as_posix()))
        else:
            found.append((root, root.name))

    jobs: list[FileJob] = []
    seen: set[Path] = set()
    for path, rel in found:
        if include and not _matches(include, path.name, rel):
            continue
        if exclude and _matches(exclude, path.name, rel):
            continue
        real = path.resolve()
        if real in seen or not path.is_file():
            continue
        seen.add(real)
        try:
            size = path.stat().st_size
        except OSError as error:
            size = 0
            job = FileJob(path=path, name=rel, size=size)
            job.fail("unreadable", f"cannot read the file: {error.strerror or error}")
            jobs.append(job)
            continue
        jobs.append(FileJob(path=path, name=rel, size=size))
    return jobs


# -- progress reporting ------------------------------------------------------------------------------


class Reporter(Protocol):
    def add(self, job: FileJob) -> None: ...
    def sent(self, job: FileJob, n: int) -> None: ...
    def changed(self, job: FileJob) -> None: ...
    def uploads_done(self) -> None: ...


class SilentReporter:
    def add(self, job: FileJob) -> None:
        pass

    def sent(self, job: FileJob, n: int) -> None:
        pass

    def changed(self, job: FileJob) -> None:
        pass

    def uploads_done(self) -> None:
        pass


# -- the whole run ---------------------------------------------------------------------------------


@dataclass
class UploadOptions:
    wait: bool = True
    parallel: int = 4  # files at once
    part_parallel: int = 4  # parts at once, per multipart file
    retries: int = 3
    timeout: float | None = None  # seconds to wait for the pipeline, from the start
    poll_interval: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)
    chunking: dict[str, int] | None = None


class Uploader:
    """Presigns in batches, transfers on a thread pool, completes, and polls documents to a final state."""

    def __init__(
        self,
        api: ChuteApi,
        bucket: httpx.Client,
        options: UploadOptions,
        reporter: Reporter | None = None,
    ) -> None:
        self.api = api
        self.bucket = bucket
        self.options = options
        self.reporter: Reporter = reporter or SilentReporter()
        self.cancel = threading.Event()
        self.presigned_any = False
        self.timed_out = False

    # presign ---------------------------------------------------------------------------------

    def _request(self, job: FileJob) -> dict[str, Any]:
        request: dict[str, Any] = {"filename": job.name, "size": job.size}
        if self.options.metadata:
            request["metadata"] = self.options.metadata
        if self.options.chunking:
            request["chunking"] = self.options.chunking
        return request

    def _accept(self, job: FileJob, answer: dict[str, Any]) -> bool:
        if answer.get("status") == "rejected" or "document_id" not in answer:
            error = answer.get("error") or {}
            job.fail(
                str(error.get("code", "rejected")), str(error.get("message", "rejected")), status="rejected"
            )
            self.reporter.changed(job)
            return False
        job.document_id = str(answer["document_id"])
        job.upload = dict(answer["upload"])
        job.status = "uploading"
        self.presigned_any = True
        self.reporter.add(job)
        return True

    def _presign_one(self, job: FileJob) -> bool:
        try:
            answer = self.api.presign(self._request(job))
        except ApiError as error:
            if error.status == 401 and not self.presigned_any:
                raise
            rejected = error.status in (400, 413, 415, 422)
            job.fail(error.code, error.detail, status="rejected" if rejected else "failed")
            self.reporter.changed(job)
            return False
        return self._accept(job, answer)

    def presign(self, batch: list[FileJob]) -> list[FileJob]:
        """Presign a batch (one call); the accepted jobs. Rejections are recorded on their jobs."""
        try:
            answers = self.api.presign_batch([self._request(job) for job in batch])
        except ApiError as error:
            if error.status == 401 and not self.presigned_any:
                raise
            if error.status in (404, 405, 422):  # no batch route, or one request the API refuses whole
                return [job for job in batch if self._presign_one(job)]
            self._fail_all(batch, error.code, error.detail)
            return []
        except Unreachable as error:
            if not self.presigned_any:
                raise
            self._fail_all(batch, "unreachable", error.message)
            return []
        if len(answers) != len(batch):
            self._fail_all(batch, "bad_answer", "the API's batch answer does not match the files sent.")
            return []
        return [job for job, answer in zip(batch, answers, strict=True) if self._accept(job, answer)]

    def _fail_all(self, jobs: list[FileJob], code: str, message: str) -> None:
        for job in jobs:
            job.fail(code, message)
            self.reporter.changed(job)

    # transfer and complete ------------------------------------------------------------------

    def transfer(self, job: FileJob) -> None:
        """Send the bytes, then complete. Records the outcome on the job; raises only Cancelled."""
        assert job.upload is not None and job.document_id is not None
        upload = job.upload

        def on_bytes(n: int) -> None:
            job.sent += n
            self.reporter.sent(job, n)

        try:
            method = str(upload.get("method", "POST")).upper()
            parts: list[dict[str, Any]] | None = None
            if method == "POST":
                post_form(self.bucket, upload, job, on_bytes, self.cancel, retries=self.options.retries)
            elif method == "MULTIPART":
                parts = put_parts(
                    self.bucket,
                    upload,
                    job,
                    on_bytes,
                    self.cancel,
                    parallel=self.options.part_parallel,
                    retries=self.options.retries,
                )
            else:
                raise TransferError(f"the API asked for an upload method this CLI does not know: {method}.")
            answer = self.api.complete(job.document_id, parts)
            job.status = str(answer.get("status", "queued"))
        except Cancelled:
            job.fail("interrupted", "interrupted before the upload finished")
        except ApiError as error:
            job.fail(error.code, error.detail)
        except TransferError as error:
            job.fail("upload_failed", error.message)
        except CliError as error:
            job.fail("upload_failed", error.message)
        except OSError as error:
            job.fail("unreadable", f"cannot read the file: {error.strerror or error}")
        except Exception as error:  # a surprise answer: report it on this file, keep the others going
            job.fail("upload_failed", f"{type(error).__name__}: {error}")
        self.reporter.changed(job)

    # follow -------------------------------------------------------------------------------------

    def poll(self, job: FileJob) -> None:
        assert job.document_id is not None
        try:
            document = self.api.document(job.document_id)
        except ApiError as error:
            if error.status == 404 or error.status == 401:
                job.fail(error.code, error.detail)
                self.reporter.changed(job)
                return
            document = None
            message = error.message
        except CliError as error:
            document = None
            message = error.message
        if document is None:
            job.poll_failures += 1
            if job.poll_failures >= 20:
                job.fail("lost_track", f"stopped following the document: {message}")
                self.reporter.changed(job)
            return
        job.poll_failures = 0
        before = (job.status, job.step, job.progress, job.chunk_count)
        job.status = str(document["status"])
        job.step = document.get("step")
        job.progress = int(document.get("progress") or 0)
        job.chunk_count = document.get("chunk_count")
        failure = document.get("error")
        if failure:
            job.error_code = str(failure.get("code"))
            job.error_message = str(failure.get("message"))
        if (job.status, job.step, job.progress, job.chunk_count) != before:
            self.reporter.changed(job)

    # the run ------------------------------------------------------------------------------------

    def run(self, jobs: list[FileJob]) -> None:
        """Upload every job, following each to a final state unless `wait` is off. Ctrl-C stops the
        transfers at their next block (KeyboardInterrupt is re-raised once they have stopped)."""
        todo = deque(job for job in jobs if job.status == "pending")
        active: dict[Future[None], FileJob] = {}
        following: list[FileJob] = []
        started = time.monotonic()
        next_poll = 0.0
        announced_done = False
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.parallel), thread_name_prefix="chute-up")
        try:
            while todo or active or following:
                while todo and len(active) < self.options.parallel * 2:
                    batch = [todo.popleft() for _ in range(min(len(todo), BATCH_LIMIT))]
                    for job in self.presign(batch):
                        active[pool.submit(self.transfer, job)] = job
                if active:
                    done, _ = wait(list(active), timeout=0.1, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = active.pop(future)
                        future.result()
                        if self.options.wait and not job.final:
                            following.append(job)
                if not todo and not active and not announced_done:
                    announced_done = True
                    self.reporter.uploads_done()
                now = time.monotonic()
                if following and now >= next_poll:
                    for job in following:
                        self.poll(job)
                    following = [job for job in following if not job.final]
                    next_poll = now + self.options.poll_interval
                if (
                    following
                    and self.options.timeout is not None
                    and now - started > self.options.timeout
                    and not todo
                    and not active
                ):
                    self.timed_out = True
                    for job in following:
                        job.error_code = "wait_timeout"
                        job.error_message = (
                            f"still {job.status} after {self.options.timeout:g} s; "
                            f"follow it with `chute status {job.document_id}`"
                        )
                        self.reporter.changed(job)
                    following = []
                if following and not active and not todo:
                    time.sleep(max(0.0, min(next_poll - time.monotonic(), self.options.poll_interval)))
        except BaseException:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for job in jobs:
                if job.status in ("pending", "uploading"):
                    job.fail("interrupted", "interrupted before the upload finished")
            raise
        pool.shutdown(wait=True)


def succeeded(job: FileJob, *, waited: bool) -> bool:
    if job.error_code == "wait_timeout":
        return False
    if waited:
        return job.status == "indexed"
    return job.status in ("queued", "processing", "indexed")
