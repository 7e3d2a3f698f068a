"""What every benchmark shares: its result record, the run context, timing and load helpers."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Figure:
    """One headline number, with its target where the issue sets one."""

    label: str
    value: float
    unit: str
    target: str | None = None
    met: bool | None = None

    def shown(self) -> str:
        return f"{fmt(self.value)} {self.unit}".strip()


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]
    title: str = ""


@dataclass
class Result:
    """What one benchmark found. Saved as `<name>.json`; the report is rebuilt from those files."""

    name: str
    title: str
    smoke: bool
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    load_start: list[float] = field(default_factory=list)
    load_end: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # busy / idle / steal % of all cores while it ran
    seconds: float = 0.0
    finished_at: str = ""

    def figure(self, label: str) -> Figure | None:
        return next((f for f in self.figures if f.label == label), None)

    def save(self, folder: Path) -> Path:
        path = folder / f"{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Result:
        raw = json.loads(path.read_text())
        raw["figures"] = [Figure(**f) for f in raw.get("figures", [])]
        raw["tables"] = [Table(**t) for t in raw.get("tables", [])]
        return cls(**raw)


@dataclass
class Context:
    """Handed to each benchmark: where to write, how big to go, and the shared services."""

    out: Path
    work: Path
    smoke: bool
    services: Any  # bench.services.Services, started on first use

    def previous(self, name: str) -> Result | None:
        """Another benchmark's latest saved result in this output folder (e.g. the model limit)."""
        path = self.out / f"{name}.json"
        return Result.load(path) if path.exists() else None


Benchmark = Callable[[Context], Result]


def fmt(value: float) -> str:
    """A number with sensible precision for a report."""
    if value != value:  # NaN
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.5g}" if magnitude > 0.9 else f"{value:.3g}"  # cosines and recalls near 1


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_times() -> list[int]:
    """The machine's CPU time counters (user nice system idle iowait irq softirq steal), in ticks."""
    try:
        with open("/proc/stat") as stat:
            return [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def cpu_shares(before: list[int], after: list[int]) -> dict[str, float]:
    """Busy, idle and stolen (by the hypervisor) percentages of all cores between two samples."""
    if len(before) < 8 or len(after) < 8:
        return {}
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta) or 1
    idle, steal = delta[3] + delta[4], delta[7]
    return {
        "busy": round(100 * (total - idle - steal) / total, 1),
        "idle": round(100 * idle / total, 1),
        "steal": round(100 * steal / total, 1),
    }


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """`with stopwatch() as elapsed:` ... `elapsed()` gives seconds so far (and after the block)."""
    started = time.perf_counter()
    ended: list[float] = []
    yield lambda: (ended[0] if ended else time.perf_counter()) - started
    ended.append(time.perf_counter())


def wait_for(check: Callable[[], bool], what: str, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)
