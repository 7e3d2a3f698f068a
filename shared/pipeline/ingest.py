"""The stage sequence: one document from the bucket to indexed chunks, with its row kept current.

    claim row -> download (streamed to a temp file) -> extract -> chunk -> embed (batched)
              -> one transaction: mark indexed + replace chunks

Contract: `process_next_document` claims a document, runs the stages and always returns an `Outcome`;
a failure the owner can act on marks the document `failed` with a code, storage or database trouble
hands it back to the queue, and nothing a document does stops the worker. Stages are plain functions;
this module does the I/O around them and reports each step through the claimed `Attempt`
(`shared/pipeline/attempt.py`), whose fenced writes change nothing once the claim is lost. Log lines
carry the document's id (bound once the document is claimed) and the task's id (bound by the task).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psycopg
import structlog
from celery.exceptions import SoftTimeLimitExceeded
from structlog.contextvars import bound_contextvars

from shared.change_notices import publish_change
from shared.db import transaction
from shared.errors import DocumentFailed, ErrorCode
from shared.metrics import CHUNKS_TRUNCATED
from shared.pipeline.attempt import PROGRESS, Attempt, Cancelled
from shared.pipeline.chunking import ChunkingSettings, chunk
from shared.pipeline.elements import Chunk, Element, elements_from_data
from shared.pipeline.extract import extract_data
from shared.pipeline.extractors.ocr import OcrOptions
from shared.pipeline.isolation import run_isolated
from shared.pipeline.tokens import token_counts, window
from shared.pipeline.worker_context import WorkerContext
from shared.repositories import chunks as chunk_rows
from shared.repositories import documents
from shared.rows import DocumentRow
from shared.storage import ObjectChanged, ObjectMissing, StorageError

log = structlog.get_logger("chute.ingest")

EMBED_BATCH_TEXTS = 64
# English runs 4-5 characters a token with the model's tokenizer; 8 bounds any real text from above.
MAX_CHARACTERS_PER_TOKEN = 8


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended. `released`: storage or the database failed, the document is `queued`
    again and the reconciler sends it after its grace period; `held`: another worker's lease is live;
    `skipped`: nothing to do (final, cancelled or deleted)."""

    status: str  # indexed | failed | cancelled | skipped | held | released
    chunk_count: int = 0


def process_next_document(ctx: WorkerContext, ticket: uuid.UUID) -> Outcome:
    """Claim and process the next document, fairly between tenants.

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
    with bound_contextvars(document_id=str(row.id)):
        return _process_claimed(Attempt(ctx, row.id, row.attempts), row)


def _process_claimed(attempt: Attempt, row: DocumentRow) -> Outcome:
    """Run the stages of a claimed document and record how they ended."""
    settings = attempt.ctx.settings
    publish_change(attempt.ctx.redis, attempt.document_id)
    log.info("ingest.claimed", attempt=attempt.attempt)
    try:
        if attempt.attempt > settings.max_attempts:
            raise DocumentFailed(
                ErrorCode.TOO_MANY_ATTEMPTS,
                f"Processing was tried {settings.max_attempts} times without finishing; "
                "check the worker logs, then reindex the document.",
            )
        with attempt.heartbeat():
            count = _run_stages(attempt, row)
    except Cancelled:
        log.info("ingest.cancelled")
        return Outcome("cancelled")
    except DocumentFailed as failure:
        attempt.fail(failure.code, failure.message)
        return Outcome("failed")
    except SoftTimeLimitExceeded:
        attempt.fail(
            ErrorCode.TIMEOUT,
            f"Processing took longer than {settings.task_soft_time_limit} s and was stopped.",
        )
        return Outcome("failed")
    except ObjectMissing:
        attempt.fail(
            ErrorCode.UPLOAD_NOT_FOUND, "The uploaded object is no longer in the bucket; upload it again."
        )
        return Outcome("failed")
    except ObjectChanged:
        attempt.fail(
            ErrorCode.OBJECT_CHANGED,
            "The object in the bucket was replaced after it was checked; it was not indexed. "
            "Upload it again, or reindex the document to check the new object.",
        )
        return Outcome("failed")
    except (StorageError, psycopg.OperationalError) as error:
        attempt.release_for_retry(error)
        return Outcome("released")
    except Exception:
        log.exception("ingest.error")
        # The exception's text is in the log above; the tenant gets a plain sentence.
        attempt.fail(ErrorCode.INTERNAL_ERROR, "Chute could not process the document; the error was logged.")
        return Outcome("failed")
    return Outcome("indexed", chunk_count=count)


def _run_stages(attempt: Attempt, row: DocumentRow) -> int:
    """download -> extract -> chunk -> embed -> store; the number of chunks stored."""
    ctx = attempt.ctx
    assert row.etag is not None  # a claimed row was queued with its checked object's ETag
    with tempfile.TemporaryDirectory(prefix="chute-", dir=ctx.settings.work_dir) as folder:
        # The file's local name comes from its type, never from the client's filename.
        path = Path(folder) / f"document.{row.file_type}"
        attempt.report_progress("downloading")
        with attempt.timed("download"):
            ctx.storage.download(row.object_key, row.etag, path)

        attempt.report_progress("extracting")
        with attempt.timed("extract"):
            elements = run_isolated(
                extract_data,
                str(path),
                row.file_type,
                asdict(OcrOptions.from_settings(ctx.settings)),
                memory_limit=ctx.settings.extraction_memory_limit,
                timeout=ctx.settings.extraction_timeout_seconds,
                what="Extracting the text",
                progress=attempt.report_ocr_progress,
                seconds_per_unit=ctx.settings.ocr_seconds_per_page,
                decode=elements_from_data,
            )

    attempt.report_progress("chunking")
    chunking = ChunkingSettings(**row.chunking)
    _check_chunk_count(_fewest_chunks(elements, chunking), ctx.settings.max_chunks)
    with attempt.timed("chunk"):
        chunks = chunk(elements, chunking)
    if not chunks:
        raise DocumentFailed(ErrorCode.NO_TEXT, "The document has no text to index.")
    _check_chunk_count(len(chunks), ctx.settings.max_chunks)

    attempt.report_progress("embedding")
    with attempt.timed("embed"):
        vectors = _embed(attempt, chunks)

    attempt.report_progress("storing")
    with attempt.timed("store"), transaction(ctx.pool) as conn:
        if not documents.finish_indexed(conn, attempt.document_id, attempt.attempt, len(chunks)):
            raise Cancelled  # rolls the transaction back: nothing is written
        chunk_rows.replace_chunks(conn, attempt.document_id, row.tenant_id, chunks, vectors)
    publish_change(ctx.redis, attempt.document_id)
    log.info("ingest.indexed", chunks=len(chunks))
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
            ErrorCode.TOO_LARGE,
            f"The document makes {chunks:,} chunks or more; the limit is {max_chunks:,} chunks "
            "(CHUTE_MAX_CHUNKS). Split it, raise chunk_size, or raise the limit.",
        )


def _embed(attempt: Attempt, chunks: Sequence[Chunk]) -> np.ndarray:
    settings = attempt.ctx.settings
    embedder = attempt.ctx.embedder()
    start, span = PROGRESS["embedding"], PROGRESS["storing"] - PROGRESS["embedding"]
    parts: list[np.ndarray] = []
    for begin in range(0, len(chunks), EMBED_BATCH_TEXTS):
        batch = chunks[begin : begin + EMBED_BATCH_TEXTS]
        texts = [c.text for c in batch]
        _count_truncated(texts, window(settings))
        parts.append(embedder.embed(texts))
        done = begin + len(batch)
        attempt.report_progress("embedding", start + span * done // len(chunks), throttle=True)
    return np.concatenate(parts)


def _count_truncated(texts: Sequence[str], window_tokens: int) -> None:
    """Count (and log) texts longer than the model reads: only a chunk_size above the window asked
    for makes them."""
    over = sum(tokens > window_tokens for tokens in token_counts(texts))
    if over:
        CHUNKS_TRUNCATED.inc(over)
        log.warning("ingest.chunks.truncated", chunks=over, window=window_tokens)
