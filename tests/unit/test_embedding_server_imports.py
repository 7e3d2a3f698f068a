"""The embedding server must start on a GPU host that has only torch, sentence-transformers,
tokenizers, numpy, prometheus-client and the carried wheels (bench/gpu): none of Chute's other
dependencies may be imported on its path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("redis", "psycopg", "boto3", "botocore", "celery", "openai", "unstructured", "onnxruntime")


def test_the_server_and_the_gpu_bench_import_none_of_the_heavy_dependencies() -> None:
    script = (
        "import sys, shared.embedding_server.app, shared.embedding_server.__main__, bench.gpu.run; "
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"imported: {run.stdout.strip()}"
