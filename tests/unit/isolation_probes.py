"""Functions the isolation tests run in the extraction child. They live in a module of their own
because the child imports them by name (`tests.unit.isolation_probes:pages`)."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


class RunsCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


def pages(count: int, seconds_each: float, report: Callable[[int, int], None]) -> str:
    report(0, count)
    for page in range(1, count + 1):
        time.sleep(seconds_each)
        report(page, count)
    return "read"


def environment() -> dict[str, str]:
    return dict(os.environ)


def sockets() -> list[str]:
    """The sockets this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the listing's own descriptor is gone by now
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:"):
                found.append(link)
    return found


def start_program_and_hang(pid_file: str) -> None:
    program = subprocess.Popen(["sleep", "600"])  # as pandoc or LibreOffice would be started
    Path(pid_file).write_text(str(program.pid))
    time.sleep(600)


def kill_the_extraction_process(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(600)


def reply_with_a_pickle(marker: str) -> None:
    """Write, to every pipe this child may write to, a pickle that would create `marker` if loaded."""
    payload = pickle.dumps(RunsCommand(f"touch {marker}"), protocol=0)
    for fd in map(int, os.listdir("/proc/self/fd")):
        with suppress(OSError):
            flags = Path(f"/proc/self/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and int(flags, 8) & os.O_ACCMODE == os.O_WRONLY:
                os.write(fd, payload)
    os._exit(0)


def returns(value: Any) -> Any:
    return value


def allocates(megabytes: int) -> int:
    return len(bytearray(megabytes * 2**20))


def text(characters: int) -> str:
    return "x" * characters
