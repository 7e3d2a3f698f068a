"""The worker process's one `WorkerContext`: opened after fork, closed at process shutdown."""

from __future__ import annotations

from shared.pipeline.worker_context import WorkerContext
from shared.settings import get_settings

_context: WorkerContext | None = None


def open_context() -> WorkerContext:
    """This process's context, opened on first call."""
    global _context
    if _context is None:
        _context = WorkerContext.open(get_settings())
    return _context


def close_context() -> None:
    global _context
    if _context is not None:
        _context.close()
        _context = None
