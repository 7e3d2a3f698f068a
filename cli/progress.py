"""How `chute upload` shows its progress, on stderr so stdout keeps only the result.

On a terminal: a rich Progress with a bar per file (bytes, then the pipeline's step and percent) and
an overall bar (bytes, then documents finished). Elsewhere (CI logs, pipes): one plain line per event.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from cli.render import plain
from cli.upload import FileJob

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text

MAX_BARS = 12  # with more files, a finished file's bar makes room for the next


def short_name(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _failure(job: FileJob) -> str:
    parts = [p for p in (job.error_code, job.error_message) if p]
    return ": ".join(parts) or job.status


class RichReporter:
    def __init__(self, console: Console, jobs: list[FileJob], *, wait: bool) -> None:
        from rich.progress import BarColumn, Progress, ProgressColumn
        from rich.text import Text

        class NameColumn(ProgressColumn):
            def render(self, task: Task) -> Text:
                return Text(task.description, style=str(task.fields.get("name_style", "")), no_wrap=True)

        class DetailColumn(ProgressColumn):
            def render(self, task: Task) -> Text:
                from rich.filesize import decimal

                if task.fields.get("phase") == "bytes":
                    speed = f"  {decimal(int(task.speed))}/s" if task.speed else ""
                    return Text(f"{decimal(int(task.completed))} / {decimal(int(task.total or 0))}{speed}")
                return Text(str(task.fields.get("detail", "")), style=str(task.fields.get("style", "")))

        self.wait = wait
        self.lock = threading.Lock()
        self.many = len(jobs) > MAX_BARS
        self.progress: Progress = Progress(
            NameColumn(),
            BarColumn(bar_width=30),
            DetailColumn(),
            console=console,
            transient=True,
            refresh_per_second=8,
        )
        self.tasks: dict[int, TaskID] = {}
        self.queued: set[int] = set()  # jobs whose upload completed: the pipeline phase counts these
        self.finished: set[int] = set()
        self.bytes_total = sum(job.size for job in jobs if job.status == "pending")
        self.overall = self.progress.add_task(
            f"all {len(jobs)} file{'s' if len(jobs) != 1 else ''}",
            total=max(self.bytes_total, 1),
            phase="bytes",
            name_style="bold",
        )
        self.pipeline_phase = False

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _print(self, text: str, style: str) -> None:
        from rich.text import Text

        self.progress.console.print(Text(plain(text), style=style))

    def add(self, job: FileJob) -> None:
        with self.lock:
            self.tasks[id(job)] = self.progress.add_task(
                short_name(plain(job.name)), total=max(job.size, 1), phase="bytes"
            )

    def sent(self, job: FileJob, n: int) -> None:
        task = self.tasks.get(id(job))
        if task is not None:
            self.progress.advance(task, n)
        self.progress.advance(self.overall, n)

    def changed(self, job: FileJob) -> None:
        with self.lock:
            task = self.tasks.get(id(job))
            if task is None or (job.status in ("rejected", "failed") and id(job) not in self.queued):
                # refused before or while sending its bytes
                self._print(f"✗ {job.name}: {job.status} — {_failure(job)}", "red")
                if task is not None:
                    self.progress.update(task, phase="done", detail=job.status, style="red")
                    self._retire(job, task)
                self.bytes_total -= job.size - job.sent if task is not None else job.size
                if not self.pipeline_phase:
                    self.progress.update(self.overall, total=max(self.bytes_total, 1))
                return
            if job.status in ("queued", "processing") and id(job) not in self.queued:
                self.queued.add(id(job))
            if job.error_code == "wait_timeout":
                self.progress.update(task, phase="done", detail=f"still {job.status}", style="yellow")
                self._retire(job, task)
            elif job.status == "queued":
                self.progress.update(task, phase="pipeline", total=100, completed=0, detail="queued")
            elif job.status == "processing":
                step = job.step or "processing"
                self.progress.update(
                    task,
                    phase="pipeline",
                    total=100,
                    completed=job.progress,
                    detail=f"{step} {job.progress}%",
                )
            elif job.status == "indexed":
                self.queued.add(id(job))
                self.progress.update(
                    task,
                    phase="done",
                    total=100,
                    completed=100,
                    detail=f"indexed · {job.chunk_count} chunk{'s' if job.chunk_count != 1 else ''}",
                    style="green",
                )
                self._retire(job, task)
            elif job.final:
                self.progress.update(task, phase="done", detail=job.status, style="red")
                self._print(f"✗ {job.name}: {job.status} — {_failure(job)}", "red")
                self._retire(job, task)
            self._overall()

    def _retire(self, job: FileJob, task: TaskID) -> None:
        if id(job) in self.queued:
            self.finished.add(id(job))
        if self.many:
            self.progress.update(task, visible=False)

    def _overall(self) -> None:
        if self.pipeline_phase:
            self.progress.update(
                self.overall,
                total=max(len(self.queued), 1),
                completed=len(self.finished),
                detail=f"{len(self.finished)}/{len(self.queued)} documents done",
            )

    def uploads_done(self) -> None:
        with self.lock:
            if not self.wait:
                self.progress.update(self.overall, phase="done", detail="sent", style="green")
                return
            self.pipeline_phase = True
            self.progress.update(self.overall, phase="pipeline", completed=0)
            self._overall()


class LineReporter:
    """One line per event on stderr, for logs and pipes."""

    def __init__(self, *, wait: bool) -> None:
        self.wait = wait
        self.lock = threading.Lock()
        self.said: dict[int, str] = {}

    def __enter__(self) -> LineReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _say(self, job: FileJob, event: str, text: str) -> None:
        with self.lock:
            if self.said.get(id(job)) == event:
                return
            self.said[id(job)] = event
            print(f"{event:<9} {plain(text)}", file=sys.stderr, flush=True)

    def add(self, job: FileJob) -> None:
        pass

    def sent(self, job: FileJob, n: int) -> None:
        pass

    def changed(self, job: FileJob) -> None:
        if job.error_code == "wait_timeout":
            self._say(job, "waiting", f"{job.name}: still {job.status}")
        elif job.status == "queued":
            self._say(job, "uploaded", f"{job.name} ({job.size} bytes)")
        elif job.status == "indexed":
            chunks = f"{job.chunk_count} chunk{'s' if job.chunk_count != 1 else ''}"
            self._say(job, "indexed", f"{job.name}: {chunks}")
        elif job.status in ("rejected", "failed", "cancelled", "expired"):
            self._say(job, job.status, f"{job.name}: {_failure(job)}")

    def uploads_done(self) -> None:
        pass
