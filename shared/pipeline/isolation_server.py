"""The extraction process: a small server that runs each document's extraction in a child of its own.

`shared.pipeline.isolation` starts it from a fresh interpreter (`python -m
shared.pipeline.isolation_server PRELOAD`), before the worker loads its model, with a scrubbed
environment and no descriptor of the worker's but stdin (requests), stdout (replies) and stderr (the
log). It calls `PRELOAD` (`module:function`, the extractor libraries) once and answers `READY`.

Each request names a module-level function, its JSON arguments, a memory limit and a reply limit.
A child forked in advance (cheap: no model, the libraries already imported; the next one is forked
while the worker chunks and embeds) has started a session of its own, so pandoc, LibreOffice and
every other program it runs share its process group; given the request, it caps its address space
at its size now plus the memory limit, runs the function and writes the outcome as one JSON frame.
The server answers `STARTED` (the child's pid, which is its process group), relays the child's
`PROGRESS` frames, then its `OUTCOME` frame unread (a frame over the reply limit stops the child),
then `DONE` with how the child ended (`exit`: its exit code, -N for signal N) once it has killed what
was left of the child's process group. One request at a time. End of input or SIGTERM (sent by the
kernel when the worker dies) kills the running child's group and ends the server; a child is killed
when the server dies. Nothing a child writes is unpickled or run: the worker decodes and checks it.

Frames, both ways: one kind byte, a 4-byte big-endian length, that many bytes of UTF-8 JSON.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import selectors
import signal
import struct
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NoReturn

from shared.errors import DocumentFailed
from shared.pipeline.environment import configure_library_environment

REQUEST, READY, STARTED, PROGRESS, OUTCOME, DONE = b"Q", b"R", b"S", b"P", b"O", b"D"
MAX_REQUEST_BYTES = 1 << 20
_HEADER = struct.Struct(">cI")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_PDEATHSIG = 1
_running: int | None = None  # the document child now running: its pid, which is its process group


class FrameTooLarge(Exception):
    """A frame announced more bytes than the reader accepts."""


class FrameReader:
    """Whole frames out of a byte stream, as its pieces arrive; none longer than `max_size` bytes."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """The frames `data` completes, as (kind, payload); raises FrameTooLarge."""
        self._buffer += data
        frames: list[tuple[bytes, bytes]] = []
        while len(self._buffer) >= _HEADER.size:
            kind, size = _HEADER.unpack_from(self._buffer)
            if size > self.max_size:
                raise FrameTooLarge(size)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            frames.append((kind, bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return frames


def write_frame(fd: int, kind: bytes, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(kind, len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def encode(value: Any) -> bytes:
    """JSON as UTF-8 (a lone surrogate, which UTF-8 cannot hold, becomes `?`)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")


def main() -> None:
    configure_library_environment()  # the scrubbed environment has none of the switches
    signal.signal(signal.SIGTERM, _end)
    _on_parent_death(signal.SIGTERM)
    replies = os.dup(1)
    os.dup2(2, 1)  # a library's print goes to the log, never into the replies
    if len(sys.argv) > 1:
        _resolve(sys.argv[1])()
    spare = _Spare.fork(replies)
    write_frame(replies, READY, encode({"pid": os.getpid()}))
    requests = FrameReader(MAX_REQUEST_BYTES)
    pending: list[tuple[bytes, bytes]] = []
    while True:
        while pending:
            _, payload = pending.pop(0)
            if os.waitpid(spare.pid, os.WNOHANG)[0]:  # it died waiting (someone killed it)
                os.close(spare.requests)
                os.close(spare.outcome)
                spare = _Spare.fork(replies)
            _serve(json.loads(payload), spare, replies, requests, pending)
            spare = _Spare.fork(replies)
        data = os.read(0, 1 << 16)
        if not data:
            return  # the worker is gone
        pending += requests.feed(data)


def _end(*_: object) -> NoReturn:
    """SIGTERM (the worker died, or asks): the running document's process group goes too."""
    if _running is not None:
        with suppress(ProcessLookupError):
            os.killpg(_running, signal.SIGKILL)
    os._exit(0)


def _on_parent_death(signum: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


@dataclass(frozen=True)
class _Spare:
    """A document child waiting for its request: its pid, where it reads the request, where it
    writes its frames."""

    pid: int
    requests: int
    outcome: int

    @classmethod
    def fork(cls, replies: int) -> _Spare:
        request_read, request_write = os.pipe()
        outcome_read, outcome_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(request_write)
            os.close(outcome_read)
            _child(request_read, outcome_write, replies)
        os.close(request_read)
        os.close(outcome_write)
        return cls(pid, request_write, outcome_read)


def _serve(
    request: dict[str, Any],
    spare: _Spare,
    replies: int,
    requests: FrameReader,
    pending: list[tuple[bytes, bytes]],
) -> None:
    global _running
    pid, read_end = spare.pid, spare.outcome
    _running = pid
    with suppress(OSError):  # a child that died before reading it is reported by its exit status
        write_frame(spare.requests, REQUEST, encode(request))
    os.close(spare.requests)
    write_frame(replies, STARTED, encode({"pid": pid}))
    oversized = False
    outcome = FrameReader(int(request["max_reply"]))
    with selectors.DefaultSelector() as selector:
        selector.register(read_end, selectors.EVENT_READ)
        selector.register(0, selectors.EVENT_READ)
        reading = True
        while reading:
            for key, _ in selector.select():
                block = os.read(key.fd, 1 << 20)
                if key.fd == 0:
                    if not block:  # the worker is gone: so is this document
                        _end()
                    pending += requests.feed(block)
                    continue
                try:
                    frames = outcome.feed(block) if block else []
                except FrameTooLarge:
                    oversized = True
                    os.killpg(pid, signal.SIGKILL)
                    frames = []
                for kind, payload in frames:
                    if kind in (PROGRESS, OUTCOME):
                        write_frame(replies, kind, payload)
                reading = bool(block) and not oversized and all(kind != OUTCOME for kind, _ in frames)
    os.close(read_end)
    exit_code = os.waitstatus_to_exitcode(_end_group(pid))  # -N: killed by signal N
    _running = None
    write_frame(replies, DONE, encode({"exit": exit_code, "oversized": oversized}))


def _end_group(pid: int) -> int:
    """Wait for the child to end, kill what is left of its process group, reap it: its wait status."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # not reaped yet: its pid still names the group
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def _child(requests: int, out: int, replies: int) -> NoReturn:
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _on_parent_death(signal.SIGKILL)  # the extraction process gone, so is this document
        os.setsid()  # its own process group: killing the group kills every program it started
        os.close(replies)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        request = _read_request(requests)
        if request is None:  # the server ended first
            os._exit(0)
        # It may grow by the memory limit over what it already is (the preloaded libraries).
        with open("/proc/self/statm") as statm:
            cap = int(statm.read().split()[0]) * _PAGE + int(request["memory_limit"])
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        kwargs: dict[str, Any] = {}
        if request["report"]:

            def report(done: int, total: int) -> None:
                write_frame(out, PROGRESS, encode([done, total]))

            kwargs["report"] = report
        try:
            result: dict[str, Any] = {"ok": _resolve(request["call"])(*request["args"], **kwargs)}
        except MemoryError:
            result = {"memory": True}
        except BaseException as error:
            # Libraries report a failed allocation in their own words (lxml: "unknown error"), which
            # would pass for a corrupt file: near the cap, running out of memory is the real cause.
            if _peak_address_space() >= cap * 0.9:
                result = {"memory": True}
            elif isinstance(error, DocumentFailed):
                result = {"failed": [error.code, error.message]}
            else:
                result = {"error": f"{type(error).__name__}: {error}"}
        try:
            data = encode(result)
        except MemoryError:
            data = encode({"memory": True})
        except (TypeError, ValueError) as error:
            data = encode({"error": f"the result is not JSON data: {error}"})
        write_frame(out, OUTCOME, data)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _read_request(fd: int) -> dict[str, Any] | None:
    reader = FrameReader(MAX_REQUEST_BYTES)
    while block := os.read(fd, 1 << 16):
        for _, payload in reader.feed(block):
            os.close(fd)
            return json.loads(payload)  # type: ignore[no-any-return]
    return None


def _resolve(name: str) -> Callable[..., Any]:
    """The function `module:qualified.name` names."""
    module_name, _, qualified = name.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in qualified.split("."):
        found = getattr(found, part)
    return found  # type: ignore[no-any-return]


def _peak_address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    main()
