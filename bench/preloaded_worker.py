"""Chute's worker with item 7 of bench/PROPOSED_CHANGES.md applied, for measuring that change only:
each worker process imports the extractors' libraries before it forks extraction children, so the
children inherit them instead of importing them again for every document.

    celery -A bench.preloaded_worker worker ...
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from celery.signals import worker_process_init

from worker.celery_app import app

__all__ = ["app"]

LIBRARIES = [
    "pypdfium2",
    "docx",
    "pptx",
    "openpyxl",
    "bs4",
    "lxml",
    "pypandoc",
    "unstructured.chunking.title",
]
EXTRACTORS = ["html", "mail", "pandoc", "pdf", "sheets", "slides", "text", "word"]


@worker_process_init.connect
def _preload(**_: Any) -> None:
    for name in LIBRARIES:
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)
    for name in EXTRACTORS:
        importlib.import_module(f"shared.pipeline.extractors.{name}")
