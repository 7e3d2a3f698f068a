"""The bookkeeping of one claimed attempt at one document: its lease heartbeat, progress reports,
failure, release for a retry, and step timings.

Contract: every write is fenced by the attempt number (`shared/repositories/documents.py`), so an
attempt that lost its claim (cancelled, deleted, or taken over after its lease ran out) changes
nothing. It learns so from the heartbeat or from a progress report, and `report_progress` then raises
`Cancelled`: the caller stops between steps. Every write is followed by a change notice on Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import structlog

from shared.change_notices import publish_change
from shared.db import transaction
from shared.metrics import DOCUMENT_FAILURES, STEP_SECONDS
from shared.pipeline.worker_context import WorkerContext
from shared.repositories import documents

log = structlog.get_logger("chute.ingest")

# Where each step starts on the 0-100 progress scale. OCR (scanned pages, images) moves page by page.
PROGRESS = {"downloading": 0, "extracting": 10, "ocr": 12, "chunking": 30, "embedding": 35, "storing": 90}


class Cancelled(Exception):
    """The attempt lost its claim: the document was cancelled, deleted or taken over."""


class Attempt:
    """One claimed attempt at one document (`attempt` is the row's attempt number)."""

    def __init__(self, ctx: WorkerContext, document_id: uuid.UUID, attempt: int) -> None:
        self.ctx = ctx
        self.document_id = document_id
        self.attempt = attempt
        self._last_report = 0.0
        self._reported = ("downloading", 0)  # what the claim wrote
        self._lost = threading.Event()  # cancelled, deleted, or taken over: stop at the next step

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Renew the lease on a timer while the attempt lasts, so a long step (a big extraction, the
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

    def report_progress(self, step: str, progress: int | None = None, *, throttle: bool = False) -> None:
        """Write the step and progress to the row, renewing the lease, and publish the change.

        Raises `Cancelled` when the attempt lost its claim (seen now or by the heartbeat). The step
        and progress already recorded are not written again, nor, with `throttle`, more than twice a
        second (the heartbeat keeps renewing the lease and noticing a cancellation meanwhile)."""
        if self._lost.is_set():
            raise Cancelled
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
            raise Cancelled
        publish_change(self.ctx.redis, self.document_id)

    def report_ocr_progress(self, done: int, total: int) -> None:
        """Pages read by OCR so far, as the `ocr` step's share of the progress scale."""
        start, span = PROGRESS["ocr"], PROGRESS["chunking"] - PROGRESS["ocr"]
        self.report_progress("ocr", start + span * done // max(1, total), throttle=0 < done < total)

    def fail(self, code: str, message: str) -> None:
        """Mark the document failed with `code` and a message its owner can act on."""
        with transaction(self.ctx.pool) as conn:
            documents.finish_failed(conn, self.document_id, self.attempt, code, message)
        publish_change(self.ctx.redis, self.document_id)
        DOCUMENT_FAILURES.labels(code).inc()
        log.warning("ingest.failed", code=code, message=message)

    def release_for_retry(self, error: Exception) -> None:
        """Storage or the database failed: hand the document back to the queue for a later attempt
        (the reconciler sends it again after its grace period)."""
        log.warning("ingest.released", error=str(error))
        if isinstance(error, psycopg.OperationalError):
            self.ctx.recover_pool(error)  # the heartbeat has stopped: nothing else uses the pool
        try:
            with transaction(self.ctx.pool) as conn:
                documents.release_for_retry(conn, self.document_id, self.attempt)
        except psycopg.OperationalError:
            pass  # the database is down: the lease runs out and the reconciler queues it again

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Record how long `stage` took (metric and log line), whether it succeeded or not."""
        started = time.perf_counter()
        try:
            yield
        finally:  # failed steps count too: a slow failure is worth seeing
            seconds = time.perf_counter() - started
            STEP_SECONDS.labels(stage).observe(seconds)
            log.info("ingest.stage.done", stage=stage, seconds=round(seconds, 3))
