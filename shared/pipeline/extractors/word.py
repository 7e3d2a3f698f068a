"""Word (.docx) text through python-docx: paragraphs typed by style, tables, headers and footers."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.pipeline.elements import Element
from shared.pipeline.extractors import table_blocks, table_row_line

if TYPE_CHECKING:
    from docx.document import Document
    from docx.section import _Footer, _Header

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_PARAGRAPH = f"{_W}p"
_TABLE = f"{_W}tbl"
_ROW = f"{_W}tr"
_CELL = f"{_W}tc"
# Content controls, custom XML and tracked insertions wrap ordinary paragraphs, rows and cells;
# python-docx's own iterators skip what they wrap, which loses text in forms and templates.
_WRAPPERS = frozenset({f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml", f"{_W}ins", f"{_W}smartTag"})
_NESTED_ROW_SEPARATOR = "; "
_TEXT_PIECES_XPATH = (
    # Runs under mc:Fallback repeat what mc:Choice already holds (text boxes in older formats).
    ".//w:r[not(ancestor::mc:Fallback)]/*"
    "[self::w:t or self::w:tab or self::w:br or self::w:cr or self::w:noBreakHyphen]"
)
_NAMESPACES = {
    "w": _W.strip("{}"),
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
}
_PIECE_TEXT = {f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


def extract_docx(path: Path) -> list[Element]:
    import docx

    document = docx.Document(str(path))
    headers, footers = _headers_and_footers(document)
    elements = list(headers)
    elements += _blocks_to_elements(document.element.body, document)
    elements += footers
    return elements


def _blocks_to_elements(container: Any, story: Any, element_type: str | None = None) -> list[Element]:
    """Elements for the paragraphs and tables in `container`; `element_type` overrides paragraph types."""
    from docx.text.paragraph import Paragraph

    elements: list[Element] = []
    for block in _unwrapped_children(container, {_PARAGRAPH, _TABLE}):
        if block.tag == _PARAGRAPH:
            text = _paragraph_text(block)
            if text.strip():
                kind = element_type or _paragraph_type(block, Paragraph(block, story))
                elements.append(Element(text, kind))
        else:
            elements += table_blocks(_table_lines(block, story))
    return elements


def _paragraph_text(paragraph: Any) -> str:
    """All run text of a paragraph, including tracked insertions and content controls.

    python-docx's `Paragraph.text` reads only direct runs and hyperlinks.
    """
    pieces: list[str] = []
    for piece in _text_pieces_query()(paragraph):
        pieces.append(piece.text or "" if piece.tag == f"{_W}t" else _PIECE_TEXT[piece.tag])
    return "".join(pieces)


@functools.cache
def _text_pieces_query() -> Any:
    from lxml import etree

    return etree.XPath(_TEXT_PIECES_XPATH, namespaces=_NAMESPACES)


def _paragraph_type(block: Any, paragraph: Any) -> str:
    """Title for title and heading styles, ListItem for list styles or numbering, else NarrativeText."""
    style = paragraph.style
    style_name = (style.name or "").lower() if style is not None else ""
    if style_name in {"title", "subtitle"} or style_name.startswith("heading"):
        return "Title"
    properties = block.pPr
    if style_name.startswith("list") or (properties is not None and properties.numPr is not None):
        return "ListItem"
    return "NarrativeText"


def _table_lines(table: Any, story: Any) -> list[str]:
    """One line per row; a vertically merged cell's text appears once, in its first row."""
    lines: list[str] = []
    for row in _unwrapped_children(table, {_ROW}):
        cells: list[str] = []
        for cell in _unwrapped_children(row, {_CELL}):
            if cell.vMerge == "continue":
                cells.append("")
                continue
            cells.append(_cell_text(cell, story))
        lines.append(table_row_line(cells))
    return lines


def _cell_text(cell: Any, story: Any) -> str:
    parts: list[str] = []
    for block in _unwrapped_children(cell, {_PARAGRAPH, _TABLE}):
        if block.tag == _PARAGRAPH:
            parts.append(_paragraph_text(block))
        else:
            # Nested tables are bounded by the XML parser's depth limit, so recursing is safe.
            nested_rows = [line for line in _table_lines(block, story) if line.strip()]
            parts.append(_NESTED_ROW_SEPARATOR.join(nested_rows))
    return " ".join(part for part in parts if part.strip())


def _unwrapped_children(element: Any, wanted: set[str]) -> Iterator[Any]:
    """Children of `element` with a tag in `wanted`, in order, looking through wrapper elements."""
    stack: list[Iterator[Any]] = [iter(element)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif child.tag in wanted:
            yield child
        elif child.tag in _WRAPPERS:
            stack.append(iter(child))


def _headers_and_footers(document: Document) -> tuple[list[Element], list[Element]]:
    headers: list[Element] = []
    footers: list[Element] = []
    seen: set[tuple[str, str]] = set()
    for section in document.sections:
        parts: list[tuple[_Header | _Footer, str, list[Element]]] = [
            (section.header, "Header", headers),
            (section.first_page_header, "Header", headers),
            (section.even_page_header, "Header", headers),
            (section.footer, "Footer", footers),
            (section.first_page_footer, "Footer", footers),
            (section.even_page_footer, "Footer", footers),
        ]
        for header_or_footer, element_type, target in parts:
            # Linked means "no definition of its own": the previous section's text, already taken.
            if header_or_footer.is_linked_to_previous:
                continue
            root = header_or_footer.part.element
            for element in _blocks_to_elements(root, header_or_footer, element_type):
                key = (element.type, element.text.strip())
                if key[1] and key not in seen:
                    seen.add(key)
                    target.append(element)
    return headers, footers
