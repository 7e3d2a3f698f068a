"""The worker's Celery app. Start it with `celery -A worker.celery_app worker`."""

from __future__ import annotations

import os
import tempfile
from typing import Any

# Prefork children record metrics in files the main process serves (prometheus_client's multiprocess
# mode); this must be set before prometheus_client is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="chute-metrics-"))

import structlog
from celery.signals import worker_init, worker_process_init, worker_process_shutdown

from shared.cores import worker_processes
from shared.logging import configure_logging
from shared.pipeline.environment import configure_library_environment
from shared.queue import make_celery
from shared.settings import get_settings

configure_library_environment()  # before fork: every child, and whatever it imports, sees it
configure_logging()
app = make_celery(get_settings())
app.conf.worker_concurrency = worker_processes(get_settings())
app.conf.include = ["worker.tasks"]


@worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """The main worker process serves /metrics for itself and all its children."""
    settings = get_settings()
    if settings.worker_metrics_port:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        try:
            start_http_server(
                settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=registry
            )
        except OSError as error:  # e.g. a second worker on the same host: it works on, unscraped
            structlog.get_logger("chute.worker").warning(
                "worker.metrics.unavailable", port=settings.worker_metrics_port, error=str(error)
            )


@worker_process_init.connect
def _open_process_resources(**_: Any) -> None:
    # Pools and sockets do not survive fork: each worker process makes its own.
    from shared.pipeline import isolation
    from shared.pipeline.chunking import preload as preload_chunking
    from worker import context

    # The extraction process first, from a fresh interpreter: it imports the extractor libraries while
    # this process loads the model, and its document children never carry the model or the sockets.
    isolation.start()
    ctx = context.open_context()
    # Heavy imports and the model now, not inside the first document's time limit.
    preload_chunking()
    try:
        ctx.embedder()
    except Exception:  # the first document reports it; the worker stays up to say so
        structlog.get_logger("chute.worker").exception("worker.embedder.unavailable")


@worker_process_shutdown.connect
def _close_process_resources(**_: Any) -> None:
    from shared.pipeline import isolation
    from worker import context

    isolation.stop()
    context.close_context()
