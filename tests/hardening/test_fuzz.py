"""Schemathesis against the running app's own OpenAPI document: every operation, authenticated, with
generated valid and invalid input. No answer may be a 5xx.

Three runs: every operation with generated ids (mostly 404s past validation), every operation but
DELETE with the ids of a real indexed document and its task pinned (so chunks, events, cancel and
reindex get past the lookup), and the S3 webhook with its own token. Bounded by examples per operation,
not by time, so a slow machine does the same work; the seed is fixed so a failure reproduces. One
worker: hypothesis's source inspection is not thread-safe on Python 3.11 ("AST constructor recursion
depth mismatch").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.stack import Stack
from tests.conftest import EVENTS_TOKEN
from tests.helpers import ChuteClient

ST = Path(sys.executable).parent / "st"
EXAMPLES_PER_OPERATION = 100
SEED = 20261204


def schemathesis(
    stack: Stack, token: str, workdir: Path, *options: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`st run` from `workdir`, where it keeps its cache, so the checkout stays clean."""
    return subprocess.run(
        [
            str(ST),
            *(["--config-file", str(config)] if config else []),
            "run",
            f"http://127.0.0.1:{stack.ports.api}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--no-color",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=workdir,
    )


def check(run: subprocess.CompletedProcess[str]) -> None:
    print(run.stdout[-1500:])
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5000:]


def test_every_operation_with_generated_ids(stack: Stack, tenant_key: str, tmp_path: Path) -> None:
    check(schemathesis(stack, tenant_key, tmp_path))


def test_every_operation_on_a_real_document(stack: Stack, client: ChuteClient, tmp_path: Path) -> None:
    document = client.ingest("fuzzed.md", b"# Fuzz\n\nA short note about lighthouses and tides.\n")
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'"path.document_id" = "{document["document_id"]}"\n'
        f'"path.task_id" = "{document["task_id"]}"\n'
    )

    check(schemathesis(stack, client.key, tmp_path, "--exclude-method", "DELETE", config=config))


def test_the_s3_webhook_with_its_token(stack: Stack, tmp_path: Path) -> None:
    check(schemathesis(stack, EVENTS_TOKEN, tmp_path, "--include-path", "/v1/events/s3"))
