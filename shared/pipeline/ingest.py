"""The orchestrator: one document from the bucket to indexed chunks, with its row kept current.

    claim row -> download (streamed to a temp file) -> extract -> chunk -> embed (batched)
              -> one transaction: mark indexed + replace chunks

Stages are plain functions; this module does the I/O and the status updates around them. Every
write after the claim is fenced by the attempt number, so a run that lost its claim (cancelled,
deleted, or taken over after its lease ran out) changes nothing.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import redis
import structlog
from celery.exceptions import SoftTimeLimitExceeded
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.db import open_pool, transaction
from shared.errors import DocumentFailed
from shared.events import publish_change
from shared.metrics import CHUNKS_TRUNCATED, DOCUMENT_FAILURES, STEP_SECONDS
from shared.pipeline.chunking import ChunkingSettings, chunk
from shared.pipeline.elements import Chunk, Element, elements_from_data
from shared.pipeline.embedding import get_embedder
from shared.pipeline.extract import extract_data
from shared.pipeline.extractors.ocr import OcrOptions
from shared.pipeline.isolation import run_isolated
from shared.pipeline.tokens import token_counts, window
from shared.repositories import chunks as chunk_rows
from shared.repositories import documents
from shared.settings import Settings
from shared.storage import ObjectChanged, ObjectMissing, Storage, StorageError

log = structlog.get_logger("chute.ingest")

# Where each step starts on the 0-100 progress scale. OCR (scanned pages, images) moves page by page.
PROGRESS = {"downloading": 0, "extracting": 10, "ocr": 12, "chunking": 30, "embedding": 35, "storing": 90}
EMBED_BATCH_TEXTS = 64
# English runs 4-5 characters a token with the model's tokenizer; 8 bounds any real text from above.
MAX_CHARACTERS_PER_TOKEN = 8


@dataclass(slots=True)
class WorkerContext:
    """What a worker process holds for its whole life: made once after fork."""

    settings: Settings
    pool: ConnectionPool
    storage: Storage
    redis: redis.Redis

    def recover_pool(self, error: psycopg.OperationalError) -> None:
        """After a database error: drop the broken connections now, so the next delivery gets a
        fresh one. A pool that could not hand out any connection for its whole timeout is replaced:
        in one clean-clone run a worker's pool never recovered from a Postgres restart, every claim
        timing out for ten minutes after the server was back (compare psycopg/psycopg#1315)."""
        if not isinstance(error, PoolTimeout):
            self.pool.check()
            return
        log.warning("worker.pool.replaced", error=str(error))
        stale = self.pool
        self.pool = open_pool(self.settings, min_size=stale.min_size, max_size=stale.max_size)
        stale.close(timeout=0)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended. `released`: storage or the database failed, the document is `queued`
    again and the reconciler sends it after its grace period; `held`: another worker's lease is live;
    `skipped`: nothing to do (final, cancelled or deleted)."""

    status: str  # indexed | failed | cancelled | skipped | held | released
    chunk_count: int = 0


class _Cancelled(Exception):
    pass


def ingest_document(ctx: WorkerContext, ticket: uuid.UUID) -> Outcome:
    """Process the next document, fairly between tenants.

    A message is a ticket: it names the document whose queuing sent it, but the worker takes the
    queued document of the tenant served least recently, so one tenant's flood delays another
    tenant's document by at most one document per tenant with work queued. Every queued document
    sent a message, so every one is taken by some message. With nothing queued, the ticket's own
    document is claimed if its previous holder's lease ran out (a dead worker's redelivery).
    """
    settings = ctx.settings
    try:
        with transaction(ctx.pool) as conn:
            row = documents.claim_fairest(conn, settings.lease_seconds)
            if row is None:
                row = documents.claim_document(conn, ticket, settings.lease_seconds)
            held = row is None and documents.lease_is_live(conn, ticket)
    except psycopg.OperationalError as error:  # still `queued`: the reconciler sends it again
        log.warning("ingest.claim.unavailable", document_id=str(ticket), error=str(error))
        ctx.recover_pool(error)
        return Outcome("released")
    if row is None:
        # Held: another worker is on it; should that worker die, its lease runs out and the
        # reconciler queues the document again.
        log.info("ingest.claim.held" if held else "ingest.claim.skipped", document_id=str(ticket))
        return Outcome("held" if held else "skipped")

    document_id: uuid.UUID = row["id"]
    run = _Run(ctx, document_id, int(row["attempts"]))
    publish_change(ctx.redis, document_id)
    log.info("ingest.claimed", document_id=str(document_id), attempt=run.attempt)
    try:
        if run.attempt > settings.max_attempts:
            raise DocumentFailed(
                "too_many_attempts",
                f"Processing was tried {settings.max_attempts} times without finishing; "
                "check the worker logs, then reindex the document.",
            )
        with run.heartbeat():
            count = _process(run, row)
    except _Cancelled:
        log.info("ingest.cancelled", document_id=str(document_id))
        return Outcome("cancelled")
    except DocumentFailed as failure:
        run.fail(failure.code, failure.message)
        return Outcome("failed")
    except SoftTimeLimitExceeded:
        run.fail("timeout", f"Processing took longer than {settings.task_soft_time_limit} s and was stopped.")
        return Outcome("failed")
    except ObjectMissing:
        run.fail("upload_not_found", "The uploaded object is no longer in the bucket; upload it again.")
        return Outcome("failed")
    except ObjectChanged:
        run.fail(
            "object_changed",
            "The object in the bucket was replaced after it was checked; it was not indexed. "
            "Upload it again, or reindex the document to check the new object.",
        )
        return Outcome("failed")
    except (StorageError, psycopg.OperationalError) as error:
        return run.release(error)
    except Exception:
        log.exception("ingest.error", document_id=str(document_id))
        # The exception's text is in the log above; the tenant gets a plain sentence.
        run.fail("internal_error", "Chute could not process the document; the error was logged.")
        return Outcome("failed")
    return Outcome("indexed", chunk_count=count)


def _process(run: _Run, row: dict[str, Any]) -> int:
    ctx = run.ctx
    with tempfile.TemporaryDirectory(prefix="chute-", dir=ctx.settings.work_dir) as folder:
        # The file's local name comes from its type, never from the client's filename.
        path = Path(folder) / f"document.{row['file_type']}"
        run.step("downloading")
        with run.timed("download"):
            ctx.storage.download(row["object_key"], row["etag"], path)

        run.step("extracting")
        with run.timed("extract"):
            elements = run_isolated(
                extract_data,
                str(path),
                row["file_type"],
                asdict(OcrOptions.from_settings(ctx.settings)),
                memory_limit=ctx.settings.extraction_memory_limit,
                timeout=ctx.settings.extraction_timeout_seconds,
                what="Extracting the text",
                progress=run.ocr_progress,
                seconds_per_unit=ctx.settings.ocr_seconds_per_page,
                decode=elements_from_data,
            )

    run.step("chunking")
    chunking = ChunkingSettings(**row["chunking"])
    _check_chunk_count(_fewest_chunks(elements, chunking), ctx.settings.max_chunks)
    with run.timed("chunk"):
        chunks = chunk(elements, chunking)
    if not chunks:
        raise DocumentFailed("no_text", "The document has no text to index.")
    _check_chunk_count(len(chunks), ctx.settings.max_chunks)

    run.step("embedding")
    with run.timed("embed"):
        vectors = _embed(run, chunks)

    run.step("storing")
    with run.timed("store"), transaction(ctx.pool) as conn:
        if not documents.finish_indexed(conn, run.document_id, run.attempt, len(chunks)):
            raise _Cancelled  # rolls the transaction back: nothing is written
        chunk_rows.replace_chunks(conn, run.document_id, row["tenant_id"], chunks, vectors)
    publish_change(ctx.redis, run.document_id)
    log.info("ingest.indexed", document_id=str(run.document_id), chunks=len(chunks))
    return len(chunks)


def _fewest_chunks(elements: Sequence[Element], chunking: ChunkingSettings) -> int:
    """As few chunks as the text could make: at most MAX_CHARACTERS_PER_TOKEN characters a token.
    Checked before chunking, so a huge text is refused without tokenising it all."""
    characters = sum(len(e.text) for e in elements)
    return characters // (MAX_CHARACTERS_PER_TOKEN * (chunking.chunk_size - chunking.overlap))


def _check_chunk_count(chunks: int, max_chunks: int) -> None:
    """Refuse a document of more than CHUTE_MAX_CHUNKS chunks before any of it is embedded."""
    if chunks > max_chunks:
        raise DocumentFailed(
            "too_large",
            f"The document makes {chunks:,} chunks or more; the limit is {max_chunks:,} chunks "
            "(CHUTE_MAX_CHUNKS). Split it, raise chunk_size, or raise the limit.",
        )


def _embed(run: _Run, chunks: Sequence[Chunk]) -> np.ndarray:
    settings = run.ctx.settings
    embedder = get_embedder(settings)
    start, span = PROGRESS["embedding"], PROGRESS["storing"] - PROGRESS["embedding"]
    parts: list[np.ndarray] = []
    for begin in range(0, len(chunks), EMBED_BATCH_TEXTS):
        batch = chunks[begin : begin + EMBED_BATCH_TEXTS]
        texts = [c.text for c in batch]
        _count_truncated(run, texts, window(settings))
        parts.append(embedder.embed(texts))
        done = begin + len(batch)
        run.step("embedding", start + span * done // len(chunks), throttle=True)
    return np.concatenate(parts)


def _count_truncated(run: _Run, texts: Sequence[str], window_tokens: int) -> None:
    """Count (and log) texts longer than the model reads: only a chunk_size above the window asked
    for makes them."""
    over = sum(tokens > window_tokens for tokens in token_counts(texts))
    if over:
        CHUNKS_TRUNCATED.inc(over)
        log.warning(
            "ingest.chunks.truncated", document_id=str(run.document_id), chunks=over, window=window_tokens
        )


class _Run:
    """One claimed attempt at one document: progress reports, failure, release."""

    def __init__(self, ctx: WorkerContext, document_id: uuid.UUID, attempt: int) -> None:
        self.ctx = ctx
        self.document_id = document_id
        self.attempt = attempt
        self._last_report = 0.0
        self._reported = ("downloading", 0)  # what the claim wrote
        self._lost = threading.Event()  # cancelled, deleted, or taken over: stop at the next step

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew the lease on a timer while the run lasts, so a long step (a big extraction, the
        first model load) never looks like a dead worker to the reconciler."""
        done = threading.Event()
        interval = max(1.0, self.ctx.settings.lease_seconds / 3)

        def beat() -> None:
            while not done.wait(interval):
                try:
                    with transaction(self.ctx.pool) as conn:
                        ours = documents.renew_lease(
                            conn, self.document_id, self.attempt, self.ctx.settings.lease_seconds
                        )
                except psycopg.OperationalError:
                    continue  # the database is away; the next beat tries again
                if not ours:
                    self._lost.set()
                    return

        thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def step(self, step: str, progress: int | None = None, *, throttle: bool = False) -> None:
        """Record progress and renew the lease; stop the run if the document was cancelled. The step
        and progress already recorded are not written again (the heartbeat keeps renewing the lease
        and noticing a cancellation)."""
        if self._lost.is_set():
            raise _Cancelled
        reported = (step, PROGRESS[step] if progress is None else progress)
        now = time.monotonic()
        if reported == self._reported or (throttle and now - self._last_report < 0.5):
            return
        self._last_report = now
        self._reported = reported
        with transaction(self.ctx.pool) as conn:
            ours = documents.report_progress(
                conn,
                self.document_id,
                self.attempt,
                step=step,
                progress=reported[1],
                lease_seconds=self.ctx.settings.lease_seconds,
            )
        if not ours:
            raise _Cancelled
        publish_change(self.ctx.redis, self.document_id)

    def ocr_progress(self, done: int, total: int) -> None:
        """Pages read by OCR so far, as the `ocr` step's share of the progress scale."""
        start, span = PROGRESS["ocr"], PROGRESS["chunking"] - PROGRESS["ocr"]
        self.step("ocr", start + span * done // max(1, total), throttle=0 < done < total)

    def fail(self, code: str, message: str) -> None:
        with transaction(self.ctx.pool) as conn:
            documents.finish_failed(conn, self.document_id, self.attempt, code, message)
        publish_change(self.ctx.redis, self.document_id)
        DOCUMENT_FAILURES.labels(code).inc()
        log.warning("ingest.failed", document_id=str(self.document_id), code=code, message=message)

    def release(self, error: Exception) -> Outcome:
        """Storage or the database failed: hand the document back to the queue for a later attempt."""
        log.warning("ingest.released", document_id=str(self.document_id), error=str(error))
        if isinstance(error, psycopg.OperationalError):
            self.ctx.recover_pool(error)  # the heartbeat has stopped: nothing else uses the pool
        try:
            with transaction(self.ctx.pool) as conn:
                documents.release_for_retry(conn, self.document_id, self.attempt)
        except psycopg.OperationalError:
            pass  # the database is down: the lease runs out and the reconciler queues it again
        return Outcome("released")

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:  # failed steps count too: a slow failure is worth seeing
            seconds = time.perf_counter() - started
            STEP_SECONDS.labels(stage).observe(seconds)
            log.info(
                "ingest.stage.done", stage=stage, document_id=str(self.document_id), seconds=round(seconds, 3)
            )
