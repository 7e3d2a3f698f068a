"""HTML text through beautifulsoup4 and lxml: headings, paragraphs, list items, code and tables."""

from __future__ import annotations

import codecs
import functools
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.pipeline.elements import Element
from shared.pipeline.extractors import table_blocks, table_row_line
from shared.pipeline.sniff import decode_text

_SKIPPED = frozenset(
    {"head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "select"}
)
_ELEMENT_TYPES: dict[str, str] = {
    **{f"h{level}": "Title" for level in range(1, 7)},
    "p": "NarrativeText",
    "li": "ListItem",
    "dt": "ListItem",
    "dd": "NarrativeText",
    "pre": "CodeSnippet",
    "caption": "NarrativeText",
    "figcaption": "NarrativeText",
    "blockquote": "NarrativeText",
    "address": "NarrativeText",
}
# These start and end a block of text; any other tag (span, a, inline XBRL's ix:*) flows inline.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "center", "dd", "details", "dialog",
        "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header",
        "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p", "pre", "section",
        "summary", "ul", "caption", "tbody", "thead", "tfoot", "tr", "td", "th", "option",
        *_ELEMENT_TYPES,
    }
)  # fmt: skip
_LOOSE_TEXT_TYPE = "Text"
_WHITESPACE = re.compile(r"\s+")
_DECLARATION_WINDOW = 4096
_WINDOWS_1252_LABELS = frozenset({"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "l1"})


@dataclass
class _Block:
    """Text gathered for the innermost open block and the element type it will become."""

    element_type: str
    pieces: list[str] = field(default_factory=list)


def extract_html(path: Path) -> list[Element]:
    return html_elements(_decode_html(path.read_bytes()))


def html_elements(markup: str) -> list[Element]:
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # XHTML (pandoc's output, inline XBRL filings) is meant to be read as HTML here, and a body
        # that is a bare URL is still text; bs4 warns about both.
        warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
        warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(markup, "lxml")
    # Explicit stacks, never recursion: absurdly deep markup (100,000 nested tags) must extract
    # instead of raising RecursionError.
    elements: list[Element] = []
    blocks: list[_Block] = [_Block(_LOOSE_TEXT_TYPE)]
    # Items are nodes still to visit, or a block to close once its children are done.
    pending: list[Any] = [soup]
    while pending:
        node = pending.pop()
        if isinstance(node, _Block):
            _flush(blocks.pop(), elements)
            continue
        name = getattr(node, "name", None)
        if name is None:
            if _is_content_string(node):
                block = blocks[-1]
                text = str(node)
                # Source line breaks are spaces in HTML; only <br> (added as "\n") breaks a line.
                is_code = block.element_type == "CodeSnippet"
                block.pieces.append(text if is_code else _WHITESPACE.sub(" ", text))
            continue
        if name in _SKIPPED:
            continue
        if name == "br":
            blocks[-1].pieces.append("\n")
            continue
        if name == "table":
            _flush(blocks[-1], elements)
            elements += table_blocks(_table_lines(node))
            continue
        if name not in _BLOCK_TAGS:
            pending.extend(reversed(node.contents))
            continue
        _flush(blocks[-1], elements)
        inherited = blocks[-1].element_type
        # Inside <pre> everything stays code; elsewhere the innermost typed tag decides.
        element_type = inherited if inherited == "CodeSnippet" else _ELEMENT_TYPES.get(name, inherited)
        block = _Block(element_type)
        blocks.append(block)
        pending.append(block)
        pending.extend(reversed(node.contents))
    _flush(blocks[0], elements)
    return elements


def _flush(block: _Block, elements: list[Element]) -> None:
    """Turn the block's gathered text into an element and start it afresh (its tag may go on)."""
    if not block.pieces:
        return
    raw = "".join(block.pieces)
    block.pieces.clear()
    if block.element_type == "CodeSnippet":
        text = raw.strip("\n").rstrip()
    else:
        lines = (" ".join(line.split()) for line in raw.split("\n"))
        text = "\n".join(line for line in lines if line)
    if text.strip():
        elements.append(Element(text, block.element_type))


def _table_lines(table: Any) -> list[str]:
    """One line per row, cells joined; a nested table's text stays inside the cell that holds it."""
    lines: list[str] = []
    row: list[str] = []
    cell: list[str] = []
    # Items are nodes, or a one-word tuple naming what closes when it comes back off the stack.
    pending: list[Any] = [*reversed(table.contents)]
    depth_of_tables = 0
    while pending:
        node = pending.pop()
        if isinstance(node, tuple):
            marker = node[0]
            if marker == "end_table":
                depth_of_tables -= 1
                cell.append(" ")
            elif marker == "end_cell" and depth_of_tables == 0:
                row.append(" ".join("".join(cell).split()))
                cell = []
            elif marker == "end_row" and depth_of_tables == 0:
                lines.append(table_row_line(row))
                row = []
            elif marker in {"end_cell", "end_row"}:
                cell.append(" ")
            continue
        name = getattr(node, "name", None)
        if name is None:
            if _is_content_string(node):
                cell.append(str(node))
            continue
        if name in _SKIPPED:
            continue
        if name == "table":
            depth_of_tables += 1
            pending.append(("end_table",))
        elif name in {"td", "th"}:
            pending.append(("end_cell",))
        elif name == "tr":
            pending.append(("end_row",))
        elif name in _BLOCK_TAGS:
            cell.append(" ")
        pending.extend(reversed(node.contents))
    if any(part.strip() for part in cell):
        lines.append(" ".join("".join(cell).split()))
    return lines


def _is_content_string(node: Any) -> bool:
    return not isinstance(node, _markup_only_strings())


@functools.cache
def _markup_only_strings() -> tuple[type, ...]:
    """String kinds that hold markup, not text (comments, doctypes, processing instructions)."""
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    return (Comment, Declaration, Doctype, ProcessingInstruction)


def _decode_html(data: bytes) -> str:
    """Text by BOM, then the page's declared charset, then `decode_text`'s guesses.

    Decoding here keeps BeautifulSoup from running a slow statistical charset detector.
    """
    from bs4.dammit import EncodingDetector

    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return decode_text(data)
    declared = EncodingDetector.find_declared_encoding(data[:_DECLARATION_WINDOW], is_html=True)
    if declared:
        # Browsers read pages labelled Latin-1 or ASCII as windows-1252, its superset.
        label = declared.lower().replace("_", "-")
        if label in _WINDOWS_1252_LABELS:
            declared = "cp1252"
        # A UTF-16 label readable as ASCII is wrong by construction; browsers then use UTF-8.
        elif label.startswith(("utf-16", "utf-32", "utf16", "utf32")):
            declared = "utf-8"
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown label: guess as for plain text
    return decode_text(data)
