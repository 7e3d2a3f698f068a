"""An extra API process on the session's stack, started with settings of its own (a short statement
timeout, production CORS), for the tests that need one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.stack import Stack, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ExtraApi:
    url: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]


@contextmanager
def _extra_api(stack: Stack, env: dict[str, str]) -> Iterator[ExtraApi]:
    port = free_port()
    log = stack.root / "logs" / f"api-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **stack.env, **env},
            cwd=REPO,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, "API", process=process)
        yield ExtraApi(url, port, log, process)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def extra_api(stack: Stack) -> Iterator[Callable[[dict[str, str]], ExtraApi]]:
    """Call it with CHUTE_* settings; the process it starts is stopped after the test."""
    with ExitStack() as started:
        yield lambda env: started.enter_context(_extra_api(stack, env))
