"""Tables and text for people; `--json` output bypasses all of this.

Text from the server (filenames, chunk text, error messages) is a tenant's or a document's, so it is
shown through `plain` and `cell`: never read as Rich markup, and with control characters (terminal
escape sequences, bidirectional overrides) shown as visible escapes instead of reaching the terminal.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cli.upload import FileJob

STATUS_STYLES = {
    "indexed": "green",
    "queued": "cyan",
    "processing": "cyan",
    "awaiting_upload": "yellow",
    "failed": "red",
    "rejected": "red",
    "cancelled": "magenta",
    "expired": "magenta",
}


def _visible(char: str) -> str:
    if unicodedata.category(char) in ("Cc", "Cf", "Cs"):
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    return char


def plain(value: object) -> str:
    """`value` as text a terminal shows as it is: control and format characters become escapes."""
    text = str(value)
    return text if text.isprintable() else "".join(_visible(char) for char in text)


def cell(value: object, style: str = "") -> Text:
    """`plain(value)` as a Rich table cell, which Rich never reads as markup."""
    from rich.text import Text

    return Text(plain(value), style=style)


def stdout_console() -> Console:
    """Stdout; when it is not a terminal and COLUMNS is unset, wide enough that ids never wrap."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(width=160 if wide else None, highlight=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def status_text(status: str, step: str | None = None, progress: int | None = None) -> str:
    if status == "processing" and step:
        return f"processing: {step} {progress or 0}%"
    return status


def _styled(status: str, text: str | None = None) -> Text:
    return cell(text or status, STATUS_STYLES.get(status, ""))


def size_text(size: int | None) -> str:
    from rich.filesize import decimal

    return "-" if size is None else decimal(size)


def _time(value: str | None) -> str:
    """RFC 3339 to 'YYYY-MM-DD HH:MM:SS' (UTC), or '-'."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19] + " UTC"


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    return f"{error.get('code')}: {error.get('message')}"


def document_table(doc: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("Document", cell(doc.get("document_id")))
    table.add_row("File", cell(doc.get("filename")))
    table.add_row(
        "Status", _styled(doc["status"], status_text(doc["status"], doc.get("step"), doc.get("progress")))
    )
    table.add_row("Chunks", str(doc.get("chunk_count", 0)))
    table.add_row("Type", cell(doc.get("content_type")))
    table.add_row("Size", size_text(doc.get("size")))
    if doc.get("error"):
        table.add_row("Error", _styled("failed", _error_text(doc["error"])))
    if doc.get("metadata"):
        table.add_row("Metadata", cell(json.dumps(doc["metadata"], ensure_ascii=False)))
    table.add_row("Attempts", str(doc.get("attempts", 0)))
    table.add_row("Task", str(doc.get("task_id") or "-"))
    table.add_row("Object", cell(doc.get("object_key")))
    table.add_row("Created", _time(doc.get("created_at")))
    table.add_row("Updated", _time(doc.get("updated_at")))
    table.add_row("Indexed", _time(doc.get("indexed_at")))
    return table


def documents_table(items: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(header_style="bold")
    table.add_column("Document", no_wrap=True)
    table.add_column("File", overflow="fold", ratio=1)
    table.add_column("Status", no_wrap=True)
    table.add_column("Chunks", justify="right", no_wrap=True)
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Updated", no_wrap=True)
    for doc in items:
        status = doc["status"]
        text = status_text(status, doc.get("step"), doc.get("progress"))
        if doc.get("error"):
            text += f" ({doc['error'].get('code')})"
        table.add_row(
            cell(doc["document_id"]),
            cell(doc["filename"]),
            _styled(status, text),
            str(doc.get("chunk_count", 0)),
            size_text(doc.get("size")),
            _time(doc.get("updated_at")),
        )
    return table


def passage(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def search_table(results: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(header_style="bold", show_lines=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("File", overflow="fold", max_width=40)
    table.add_column("Page", justify="right", no_wrap=True)
    table.add_column("Passage", ratio=1)
    for rank, hit in enumerate(results, 1):
        table.add_row(
            str(rank),
            f"{hit['score']:.4f}",
            cell(hit["filename"]),
            "-" if hit.get("page") is None else str(hit["page"]),
            cell(passage(str(hit.get("text", "")))),
        )
    return table


def upload_table(jobs: list[FileJob]) -> Table:
    from rich.table import Table

    table = Table(header_style="bold")
    longest = max((len(job.name) for job in jobs), default=4)
    table.add_column("File", overflow="fold", ratio=1, min_width=min(longest, 30))
    table.add_column("Status", no_wrap=True)
    table.add_column("Chunks", justify="right", no_wrap=True)
    table.add_column("Document", no_wrap=True)
    table.add_column("Error", overflow="fold", ratio=2)
    for job in jobs:
        error = ""
        if job.error_code:
            error = f"{job.error_code}: {job.error_message}" if job.error_message else job.error_code
        status = job.status if job.error_code != "wait_timeout" else f"{job.status} (still)"
        table.add_row(
            cell(job.name),
            _styled(job.status, status),
            "-" if job.chunk_count is None else str(job.chunk_count),
            cell(job.document_id or "-"),
            cell(error),
        )
    return table


def counts(jobs: list[FileJob]) -> dict[str, int]:
    """How many files ended in each status, in a fixed order."""
    found: dict[str, int] = {}
    for job in jobs:
        found[job.status] = found.get(job.status, 0) + 1
    order = ["indexed", "queued", "processing", "rejected", "failed", "cancelled", "expired"]
    keys = [k for k in order if k in found] + sorted(k for k in found if k not in order)
    return {k: found[k] for k in keys}


def count_line(jobs: list[FileJob]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts(jobs).items())
