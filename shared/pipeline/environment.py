"""The environment switches the pipeline's third-party libraries read: no telemetry, no hub downloads,
no spinning OpenMP threads.

`configure_library_environment` is called once at process start, before any of those libraries is
imported, by every process that may load them: the worker (`worker/celery_app.py`), the API (its
search embedder) and the extraction process (`shared/pipeline/isolation_server.py`, which starts with
a scrubbed environment). A value the operator set already is kept.
"""

from __future__ import annotations

import os

LIBRARY_ENVIRONMENT = {
    # unstructured, onnxruntime and huggingface_hub phone home unless told not to; an accidental hub
    # load fails at once instead of waiting on a network that is not there (docs/architecture.md).
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # Idle OpenMP threads sleep instead of spinning. A worker shares its cores with Postgres,
    # extraction and the API; spinning threads starved them and halved torch's throughput under that
    # contention (bench/results/REPORT.md). libgomp reads it when torch loads.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def configure_library_environment() -> None:
    """Set every switch in LIBRARY_ENVIRONMENT that the environment does not set already."""
    for name, value in LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
