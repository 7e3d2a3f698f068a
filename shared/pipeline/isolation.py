"""Running a risky stage away from the worker: in a child of the extraction process, with a memory cap,
a deadline and none of the worker's secrets.

Extraction parses whatever users upload. A decompression bomb or a pathological file must kill only
that document's child, never the worker: the worker reports `too_large` or `timeout` and takes the
next document. The extraction process (`shared.pipeline.isolation_server`) is started from a fresh
interpreter, so no model is copied into the children and each one forks in a few milliseconds. Its
environment keeps only what extraction needs (`child_environment`: no database URL, bucket secret,
provider key or Redis URL) and it inherits no descriptor of the worker's (no database, Redis or
broker socket). Results come back as JSON, never pickle: a malformed reply is `internal_error`, an
oversized one `too_large`. On a deadline, a cancellation or the task's time limit the worker kills
the child's whole process group (pandoc, LibreOffice and anything else it started). Should the
extraction process itself die, the document fails `internal_error` and the next call starts a new one;
should the worker die, the kernel tells the extraction process, which kills the running document.
One extraction process per worker process; `start` starts it early, else the first call does.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from shared.errors import DocumentFailed, ErrorCode
from shared.pipeline import isolation_server as server
from shared.pipeline.isolation_server import FrameReader, FrameTooLarge

Progress = Callable[[int, int], None]

PRELOAD = "shared.pipeline.extract:preload"
MAX_REPLY_BYTES = 256 * 2**20  # more text than CHUTE_MAX_CHUNKS chunks can hold
STARTUP_SECONDS = 120.0  # importing the extractor libraries, on a busy host
KILL_SECONDS = 10.0  # for the extraction process to report a killed child before it is replaced
# What extraction may see of the worker's environment: where programs, locales, temporary files
# and Tesseract's data are, and where this code is. Nothing else: no secret can leak into a document.
KEPT_VARIABLES = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "LD_LIBRARY_PATH",
    "TESSDATA_PREFIX",
    "OMP_THREAD_LIMIT",
)


class _ProcessGone(Exception):
    """The extraction process ended, or broke the protocol."""


def child_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The extraction process's environment, which every document's child and program inherits."""
    return {name: environ[name] for name in KEPT_VARIABLES if name in environ}


def start() -> None:
    """Start this process's extraction process now, if none runs (a worker calls it before loading
    its model, so the two start side by side); the first document waits for it to be ready."""
    _process(ready=False)


def stop() -> None:
    """Stop this process's extraction process, if one runs."""
    global _current
    if _current is not None and _current.owner == os.getpid():
        _current.close()
    _current = None


def run_isolated(
    fn: Callable[..., Any],
    *args: Any,
    memory_limit: int,
    timeout: float,
    what: str,
    progress: Progress | None = None,
    seconds_per_unit: float = 0.0,
    decode: Callable[[Any], Any] | None = None,
    max_reply: int = MAX_REPLY_BYTES,
) -> Any:
    """`fn(*args)` in a child that may grow by at most `memory_limit` bytes and run `timeout` s.

    `fn` is a module-level function and `args` JSON data (they travel as JSON); its result must be
    JSON data too, and comes back through `decode` (which raises ValueError or TypeError on data it
    does not accept). With `progress`, the child runs `fn(*args, report=report)`: each
    `report(done, total)` there calls `progress(done, total)` here, and the deadline becomes
    `timeout + seconds_per_unit * total` (a 300-page scan gets the time it needs; the caller caps
    `total`). `DocumentFailed` raised in the child is raised here unchanged; running out of memory
    becomes `too_large`, a reply over `max_reply` bytes `too_large`, running out of time `timeout`,
    any other crash or a malformed reply `internal_error`.
    """
    process = _process()
    request = {
        "call": f"{fn.__module__}:{fn.__qualname__}",
        "args": list(args),
        "memory_limit": memory_limit,
        "report": progress is not None,
        "max_reply": max_reply,
    }
    limit = timeout
    started = time.monotonic()
    deadline = started + timeout
    child: int | None = None
    outcome: bytes | None = None
    try:
        process.send(request)
        while True:
            kind, payload = process.next_frame(deadline)
            if kind == server.STARTED:
                child = int(json.loads(payload)["pid"])
            elif kind == server.PROGRESS and progress is not None:
                done, total = _progress(payload, what)
                limit = timeout + seconds_per_unit * total
                deadline = started + limit
                progress(done, total)
            elif kind == server.OUTCOME:
                outcome = payload
            elif kind == server.DONE:
                ended = json.loads(payload)
                break
    except TimeoutError:
        process.abandon(child)
        raise DocumentFailed(
            ErrorCode.TIMEOUT, f"{what} took longer than {limit:.0f} s and was stopped."
        ) from None
    except _ProcessGone:
        process.abandon(child)
        raise DocumentFailed(
            ErrorCode.INTERNAL_ERROR,
            f"{what} stopped: the extraction process ended unexpectedly (it is restarted for the next "
            "document). Reindex the document to try again.",
        ) from None
    except BaseException:
        process.abandon(child)  # e.g. the task's soft time limit, or the document was cancelled
        raise
    return _result(outcome, ended, what, memory_limit, max_reply, decode)


def _progress(payload: bytes, what: str) -> tuple[int, int]:
    try:
        done, total = json.loads(payload)
        if type(done) is int and type(total) is int:
            return done, total
    except ValueError:
        pass
    raise DocumentFailed(ErrorCode.INTERNAL_ERROR, f"{what} sent a malformed progress report.")


def _result(
    outcome: bytes | None,
    ended: dict[str, Any],
    what: str,
    memory_limit: int,
    max_reply: int,
    decode: Callable[[Any], Any] | None,
) -> Any:
    if ended.get("oversized"):
        raise DocumentFailed(
            ErrorCode.TOO_LARGE,
            f"{what} produced more than {max_reply // 2**20} MiB of data and was stopped.",
        )
    if outcome is None:
        if ended.get("exit") == -signal.SIGKILL:  # the kernel's OOM killer
            raise _out_of_memory(what, memory_limit)
        raise DocumentFailed(ErrorCode.INTERNAL_ERROR, f"{what} crashed (exit status {ended.get('exit')}).")
    try:
        reply = json.loads(outcome)
        [(key, value)] = reply.items()
        if key == "ok":
            return value if decode is None else decode(value)
        if key == "failed":
            code, message = value
            failure = DocumentFailed(str(code), str(message))
        elif key == "memory":
            failure = _out_of_memory(what, memory_limit)
        else:
            failure = DocumentFailed(ErrorCode.INTERNAL_ERROR, f"{what} failed: {value}")
    except (ValueError, TypeError, AttributeError):
        raise DocumentFailed(ErrorCode.INTERNAL_ERROR, f"{what} sent a malformed reply.") from None
    raise failure


def _out_of_memory(what: str, memory_limit: int) -> DocumentFailed:
    return DocumentFailed(
        ErrorCode.TOO_LARGE,
        f"{what} needed more than {memory_limit // 2**20} MiB of memory and was stopped; "
        "the document may be a decompression bomb, or too big to read.",
    )


class _ExtractionProcess:
    """One running `isolation_server`, spoken to one request at a time."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "shared.pipeline.isolation_server", PRELOAD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_environment(),
            close_fds=True,  # the worker's sockets stay with the worker
        )
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self._requests = self.popen.stdin.fileno()
        self._replies = self.popen.stdout.fileno()
        self._reader = FrameReader(MAX_REPLY_BYTES)
        self._frames: list[tuple[bytes, bytes]] = []
        self.ready = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self) -> None:
        try:
            kind, _ = self.next_frame(time.monotonic() + STARTUP_SECONDS)
        except (TimeoutError, _ProcessGone):
            kind = b""
        if kind != server.READY:
            self.close()
            raise DocumentFailed(
                ErrorCode.INTERNAL_ERROR, "The extraction process did not start; the worker's log says why."
            )
        self.ready = True

    def send(self, request: dict[str, Any]) -> None:
        self._reader.max_size = max(int(request["max_reply"]), server.MAX_REQUEST_BYTES)
        try:
            server.write_frame(self._requests, server.REQUEST, server.encode(request))
        except OSError:
            raise _ProcessGone from None

    def next_frame(self, deadline: float) -> tuple[bytes, bytes]:
        """The next frame from the extraction process; TimeoutError past `deadline`."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._replies, selectors.EVENT_READ)
            while not self._frames:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise TimeoutError
                block = os.read(self._replies, 1 << 20)
                if not block:
                    raise _ProcessGone
                try:
                    self._frames += self._reader.feed(block)
                except FrameTooLarge:
                    raise _ProcessGone from None
        return self._frames.pop(0)

    def abandon(self, child: int | None) -> None:
        """Kill the running document's process group and wait for the report of its end; a process
        that does not report in time is replaced."""
        if child is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
        deadline = time.monotonic() + KILL_SECONDS
        try:
            while child is not None and self.next_frame(deadline)[0] != server.DONE:
                pass
        except (TimeoutError, _ProcessGone):
            child = None
        if child is None:
            self.close()

    def close(self) -> None:
        with suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait()
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.close()
        self.popen.stdout.close()


_current: _ExtractionProcess | None = None


def _process(*, ready: bool = True) -> _ExtractionProcess:
    """This process's extraction process (ready, unless told otherwise); started (or restarted) when
    there is none."""
    global _current
    if _current is None or _current.owner != os.getpid() or not _current.alive():
        if _current is not None and _current.owner == os.getpid():
            _current.close()
        _current = _ExtractionProcess()
    if ready and not _current.ready:
        _current.wait_ready()
    return _current
