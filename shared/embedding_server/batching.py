"""Dynamic batching: every request's texts go on one queue, and a single model thread embeds them in
length-sorted batches of at most `max_batch_tokens` (padding counted), whichever request they came from.

Requests arrive tokenised, so tokenising the next requests overlaps with the model running the
current batch. The model thread takes the whole queue as a window once it holds a batch's worth of
tokens or its oldest text has waited `max_wait`, sorts the window longest first, and cuts it into
batches; texts arriving meanwhile form the next window, so no text waits behind more than one window.
Each request's future is answered when its last text is embedded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog

from shared.embedding_server import metrics
from shared.embedding_server.model import BatchModel

log = structlog.get_logger("chute.embedding_server")


@dataclass(eq=False)
class _Job:
    """One request: its vectors fill in as its texts' batches finish."""

    vectors: np.ndarray
    remaining: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[np.ndarray]

    def answer(self, outcome: np.ndarray | BaseException) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, outcome)


def _settle(future: asyncio.Future[np.ndarray], outcome: np.ndarray | BaseException) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@dataclass(eq=False)
class Text:
    ids: np.ndarray
    job: _Job
    row: int
    queued_at: float = field(default_factory=time.perf_counter)


def plan_batches(window: Sequence[Text], max_tokens: int) -> list[list[Text]]:
    """The window's texts, longest first, cut into batches whose padded size (texts x the longest
    text's length) stays within `max_tokens`; a text longer than that goes alone."""
    ordered = sorted(window, key=lambda text: -len(text.ids))
    batches: list[list[Text]] = []
    for text in ordered:
        if batches and (len(batches[-1]) + 1) * len(batches[-1][0].ids) <= max_tokens:
            batches[-1].append(text)
        else:
            batches.append([text])
    return batches


def pad(batch: Sequence[Text]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64, zero-padded on the right) of a batch."""
    length = max(len(text.ids) for text in batch)
    ids = np.zeros((len(batch), length), dtype=np.int64)
    mask = np.zeros((len(batch), length), dtype=np.int64)
    for row, text in enumerate(batch):
        ids[row, : len(text.ids)] = text.ids
        mask[row, : len(text.ids)] = 1
    return ids, mask


class Batcher:
    """The queue and the one thread that runs the model. `embed` is called from the event loop."""

    def __init__(self, model: BatchModel, *, max_batch_tokens: int, max_wait_seconds: float) -> None:
        self.model = model
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_seconds = max_wait_seconds
        self._queue: list[Text] = []
        self._queued_tokens = 0
        self._ready = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="embedding-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop taking batches; requests still queued are answered with an error."""
        with self._ready:
            self._stopping = True
            left, self._queue = self._queue, []
            self._ready.notify_all()
        for job in {text.job for text in left}:
            job.answer(RuntimeError("the embedding server is stopping"))
        self._thread.join(timeout=30)

    async def embed(self, tokenised: list[np.ndarray]) -> np.ndarray:
        """Vectors for one request's tokenised texts (float32, L2-normalised, in the given order)."""
        loop = asyncio.get_running_loop()
        job = _Job(
            np.empty((len(tokenised), self.model.dimensions), dtype=np.float32),
            len(tokenised),
            loop,
            loop.create_future(),
        )
        texts = [Text(ids, job, row) for row, ids in enumerate(tokenised)]
        with self._ready:
            if self._stopping:
                raise RuntimeError("the embedding server is stopping")
            self._queue.extend(texts)
            self._queued_tokens += sum(len(ids) for ids in tokenised)
            metrics.QUEUED_TEXTS.set(len(self._queue))
            self._ready.notify()
        return await job.future

    def _take_window(self) -> list[Text]:
        """Wait for texts, then for a batch's worth of tokens or the oldest text's deadline; take all."""
        with self._ready:
            while not self._queue and not self._stopping:
                self._ready.wait()
            deadline = self._queue[0].queued_at + self.max_wait_seconds if self._queue else 0.0
            while not self._stopping and self._queued_tokens < self.max_batch_tokens:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            window, self._queue, self._queued_tokens = self._queue, [], 0
            metrics.QUEUED_TEXTS.set(0)
            return window

    def _serve(self) -> None:
        while True:
            window = self._take_window()
            if not window:  # stopping
                return
            for batch in plan_batches(window, self.max_batch_tokens):
                self._run(batch)

    def _run(self, batch: list[Text]) -> None:
        started = time.perf_counter()
        for text in batch:
            metrics.QUEUE_WAIT.observe(started - text.queued_at)
        jobs = {text.job for text in batch}
        try:
            ids, mask = pad(batch)
            vectors = self.model.run(ids, mask)
        except Exception as error:  # one bad batch fails its requests, never the server
            log.exception("embedding_server.batch.failed", texts=len(batch))
            for job in jobs:
                job.answer(error)
            return
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1.0, norms)
        for text, vector in zip(batch, vectors, strict=True):
            text.job.vectors[text.row] = vector
            text.job.remaining -= 1
            if text.job.remaining == 0:
                text.job.answer(text.job.vectors)
        tokens = int(mask.sum())
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_TEXTS.observe(len(batch))
        metrics.BATCH_REQUESTS.observe(len(jobs))
        metrics.TEXTS.inc(len(batch))
        metrics.TOKENS.inc(tokens)
        metrics.PADDED_TOKENS.inc(mask.size)
