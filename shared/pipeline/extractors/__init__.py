"""Per-format extractors (one module per format family) and the helpers they share.

Each extractor takes a file path and returns raw `Element`s; `shared.pipeline.extract` cleans them
and turns failures into `DocumentFailed`. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable

from shared.pipeline.elements import Element

# Rows are grouped into Table elements of about a chunk's size, each starting with the header row,
# so that every chunk of a long table still says what its columns mean.
TABLE_BLOCK_CHARS = 1000
CELL_SEPARATOR = " | "

_MAX_REASON_CHARS = 240


class ParserReport(Exception):
    """A parser failure whose message is already a readable reason (a tool's own error text)."""


def table_row_line(cells: Iterable[str]) -> str:
    """One table row as a line of text: cells joined by `CELL_SEPARATOR`, trailing empty cells dropped."""
    values = [" ".join(cell.split()) for cell in cells]
    while values and not values[-1]:
        values.pop()
    return CELL_SEPARATOR.join(values)


def table_blocks(lines: Iterable[str], page: int | None = None) -> list[Element]:
    """Table elements of at most about `TABLE_BLOCK_CHARS`, each repeating the first (header) line."""
    blocks: list[Element] = []
    header: str | None = None
    body: list[str] = []
    size = 0
    for line in lines:
        if not line.strip():
            continue
        if header is None:
            header = line
            continue
        if body and size + len(line) > TABLE_BLOCK_CHARS:
            blocks.append(Element("\n".join([header, *body]), "Table", page))
            body, size = [], 0
        body.append(line)
        size += len(line) + 1
    if header is not None:
        blocks.append(Element("\n".join([header, *body]), "Table", page))
    return blocks


def describe_failure(exc: BaseException) -> str:
    """A short reason for a parser's exception that a person can read (no traceback)."""
    if isinstance(exc, ParserReport):
        return _shorten(str(exc))
    # python-docx and python-pptx raise PackageNotFoundError for a file that is no ZIP at all.
    if isinstance(exc, zipfile.BadZipFile) or type(exc).__name__ == "PackageNotFoundError":
        return "it is not a valid ZIP package (the file may be truncated or damaged)"
    if isinstance(exc, KeyError) and "archive" in str(exc):
        return f"a required part is missing from the package ({_shorten(str(exc).strip(chr(34)))})"
    if type(exc).__name__ == "XMLSyntaxError":
        return f"its XML is malformed ({_shorten(str(exc))})"
    if type(exc).__name__ == "UnidentifiedImageError":  # Pillow's message names the local file
        return "its header is damaged or it is not an image of its type"
    if isinstance(exc, RecursionError):
        return "its structure is nested too deeply"
    reason = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {_shorten(reason)}" if reason else name


def _shorten(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    if len(text) <= _MAX_REASON_CHARS:
        return text
    return text[: _MAX_REASON_CHARS - 1] + "…"
