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
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shared.errors import DocumentFailed

T = TypeVar("T")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def run_isolated(fn: Callable[..., T], *args: Any, memory_limit: int, timeout: float, what: str) -> T:
    """`fn(*args)` in a child process that may grow by at most `memory_limit` bytes and run `timeout` s.

    `DocumentFailed` raised in the child is raised here unchanged; running out of memory becomes
    `too_large`, running out of time `timeout`, any other crash `internal_error`.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(fn, args, memory_limit, write_end)
    os.close(write_end)
    try:
        payload = _read_until(read_end, time.monotonic() + timeout)
    except TimeoutError:
        _kill(pid)
        raise DocumentFailed("timeout", f"{what} took longer than {timeout:.0f} s and was stopped.") from None
    except BaseException:
        _kill(pid)  # e.g. the task's soft time limit: leave no child behind
        raise
    finally:
        os.close(read_end)
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


def _child(fn: Callable[..., Any], args: tuple[Any, ...], memory_limit: int, write_end: int) -> None:
    code = 0
    try:
        # The child starts as big as the worker (the model is mapped in); it may grow by the limit.
        with open("/proc/self/statm") as statm:
            cap = int(statm.read().split()[0]) * _PAGE + memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            result: tuple[str, Any] = ("ok", fn(*args))
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


def _read_until(fd: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not selector.select(remaining):
                continue
            block = os.read(fd, 1 << 20)
            if not block:
                return b"".join(chunks)
            chunks.append(block)


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
