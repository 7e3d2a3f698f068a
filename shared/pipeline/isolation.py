"""Running a risky stage in a forked child with a memory cap and a deadline.

Extraction parses whatever users upload. A decompression bomb or a pathological file must kill only
the child, never the worker: the worker reports `too_large` or `timeout` and takes the next document.
Fork (not spawn) keeps start-up to milliseconds: the child already has every library imported.
"""

from __future__ import annotations

import os
import pickle
import resource
import selectors
import signal
import struct
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import DocumentFailed

T = TypeVar("T")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PROGRESS = struct.Struct(">II")  # (units done, units in all), as the child reports them
Progress = Callable[[int, int], None]


def run_isolated(
    fn: Callable[..., T],
    *args: Any,
    memory_limit: int,
    timeout: float,
    what: str,
    progress: Progress | None = None,
    seconds_per_unit: float = 0.0,
) -> T:
    """`fn(*args)` in a child process that may grow by at most `memory_limit` bytes and run `timeout` s.

    With `progress`, the child runs `fn(*args, report=report)`: each `report(done, total)` there calls
    `progress(done, total)` here, and the deadline becomes `timeout + seconds_per_unit * total` (a
    300-page scan gets the time it needs; the caller caps `total`). `DocumentFailed` raised in the
    child is raised here unchanged; running out of memory becomes `too_large`, running out of time
    `timeout`, any other crash `internal_error`.
    """
    read_end, write_end = os.pipe()
    report_read, report_write = os.pipe() if progress is not None else (-1, -1)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        if progress is not None:
            os.close(report_read)
        _child(fn, args, memory_limit, write_end, report_write)
    os.close(write_end)
    if progress is not None:
        os.close(report_write)
    limit = timeout
    started = time.monotonic()

    def reported(done: int, total: int) -> float:
        nonlocal limit
        limit = timeout + seconds_per_unit * total
        if progress is not None:
            progress(done, total)
        return started + limit

    try:
        payload = _read_until(read_end, started + timeout, report_read, reported)
    except TimeoutError:
        _kill(pid)
        raise DocumentFailed("timeout", f"{what} took longer than {limit:.0f} s and was stopped.") from None
    except BaseException:
        _kill(pid)  # e.g. the task's soft time limit, or the document was cancelled: leave no child behind
        raise
    finally:
        os.close(read_end)
        if progress is not None:
            os.close(report_read)
    _, status = os.waitpid(pid, 0)
    if not payload:
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            raise _out_of_memory(what, memory_limit)
        raise DocumentFailed("internal_error", f"{what} crashed (exit status {status}).")
    outcome, value = pickle.loads(payload)  # noqa: S301 - our own child's output
    if outcome == "ok":
        return value  # type: ignore[no-any-return]
    if outcome == "failed":
        raise DocumentFailed(*value)
    if outcome == "memory":
        raise _out_of_memory(what, memory_limit)
    raise DocumentFailed("internal_error", f"{what} failed: {value}")


def _child(
    fn: Callable[..., Any], args: tuple[Any, ...], memory_limit: int, write_end: int, report_end: int
) -> None:
    code = 0
    try:
        # The child starts as big as the worker (the model is mapped in); it may grow by the limit.
        with open("/proc/self/statm") as statm:
            cap = int(statm.read().split()[0]) * _PAGE + memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        kwargs: dict[str, Any] = {}
        if report_end >= 0:

            def report(done: int, total: int) -> None:
                os.write(report_end, _PROGRESS.pack(done, total))

            kwargs["report"] = report
        try:
            result: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except MemoryError:
            result = ("memory", None)
        except BaseException as error:
            # Libraries report a failed allocation in their own words (lxml: "unknown error"), which
            # would pass for a corrupt file: near the cap, running out of memory is the real cause.
            if _peak_address_space() >= cap * 0.9:
                result = ("memory", None)
            elif isinstance(error, DocumentFailed):
                result = ("failed", (error.code, error.message))
            else:
                result = ("error", f"{type(error).__name__}: {error}")
        try:
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            data = pickle.dumps(("memory", None))
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _peak_address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _read_until(fd: int, deadline: float, report_fd: int, reported: Callable[[int, int], float]) -> bytes:
    """Everything the child writes to `fd`, passing its progress reports on `report_fd` (if >= 0) to
    `reported`, which answers the new deadline."""
    chunks: list[bytes] = []
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        if report_fd >= 0:
            selector.register(report_fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            for key, _ in selector.select(remaining):
                block = os.read(key.fd, 1 << 20)
                if key.fd == fd:
                    if not block:
                        return b"".join(chunks)
                    chunks.append(block)
                elif not block:
                    selector.unregister(report_fd)
                else:
                    pending += block
                    whole = len(pending) - len(pending) % _PROGRESS.size
                    for done, total in _PROGRESS.iter_unpack(pending[:whole]):
                        deadline = reported(done, total)
                    pending = pending[whole:]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _out_of_memory(what: str, memory_limit: int) -> DocumentFailed:
    return DocumentFailed(
        "too_large",
        f"{what} needed more than {memory_limit // 2**20} MiB of memory and was stopped; "
        "the document may be a decompression bomb, or too big to read.",
    )
