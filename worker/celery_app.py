"""The worker's Celery app. Start it with `celery -A worker.celery_app worker`."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from shared.logging import configure_logging
from shared.queue import make_celery
from shared.settings import get_settings

configure_logging()
app = make_celery(get_settings())
app.conf.worker_concurrency = get_settings().worker_concurrency
app.conf.include = ["worker.tasks"]


@worker_process_init.connect
def _open_process_resources(**_: Any) -> None:
    # Pools and sockets do not survive fork: each worker process makes its own.
    from worker import context

    context.open_context()


@worker_process_shutdown.connect
def _close_process_resources(**_: Any) -> None:
    from worker import context

    context.close_context()
