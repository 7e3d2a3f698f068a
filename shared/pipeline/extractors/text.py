"""Plain text and Markdown: paragraphs, headings, list items and code blocks found line by line."""

from __future__ import annotations

import re
from pathlib import Path

from shared.pipeline.elements import Element
from shared.pipeline.extractors import table_blocks, table_row_line
from shared.pipeline.sniff import decode_text

_BLANK_LINES = re.compile(r"\n[ \t\f\v]*\n")
_BULLET = re.compile(r"^\s*(?:[-*+•‣◦▪]|\(?\d{1,3}[.)]|[a-zA-Z][.)])\s+\S")
_SENTENCE_END = re.compile(r"[.,;:!?…)\]\"'”]$")
# A short line standing alone, without closing punctuation, reads as a heading in plain text.
_MAX_PLAIN_TITLE_CHARS = 60

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_MD_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$")
_TABLE_ROW = re.compile(r"^ {0,3}\|.*\|[ \t]*$")
_TABLE_DIVIDER = re.compile(r"^[ \t|:-]+$")
_BLOCKQUOTE = re.compile(r"^ {0,3}> ?")

# Spans are bounded so that text full of unmatched brackets or asterisks cannot make these
# patterns scan the rest of the paragraph from every opener (quadratic time).
_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\([^)\n]{0,2000}\)")
_LINK = re.compile(r"\[([^\]\n]{1,500})\]\([^)\n]{0,2000}\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)([^\n]{1,500}?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![*\w])\*(?=\S)([^\n]{1,500}?)(?<=\S)\*(?![*\w])")
_INLINE_CODE = re.compile(r"`+([^`\n]{1,1000})`+")


def extract_txt(path: Path) -> list[Element]:
    return plain_text_elements(decode_text(path.read_bytes()))


def plain_text_elements(text: str) -> list[Element]:
    """Paragraphs split on blank lines; all-bullet paragraphs become list items."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [paragraph.strip("\n") for paragraph in _BLANK_LINES.split(text)]
    paragraphs = [paragraph for paragraph in paragraphs if paragraph.strip()]
    elements: list[Element] = []
    for index, paragraph in enumerate(paragraphs):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if all(_BULLET.match(line) for line in lines):
            elements += [Element(line.strip(), "ListItem") for line in lines]
        elif index + 1 < len(paragraphs) and _looks_like_title(lines):
            elements.append(Element(lines[0], "Title"))
        else:
            elements.append(Element(paragraph, "NarrativeText"))
    return elements


def _looks_like_title(lines: list[str]) -> bool:
    if len(lines) != 1:
        return False
    line = lines[0].strip()
    return (
        len(line) <= _MAX_PLAIN_TITLE_CHARS
        and any(char.isalpha() for char in line)
        and not _SENTENCE_END.search(line)
    )


def extract_markdown(path: Path) -> list[Element]:
    return markdown_elements(decode_text(path.read_bytes()))


def markdown_elements(text: str) -> list[Element]:
    """Elements from Markdown's block structure; inline markup is reduced to its text."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    elements: list[Element] = []
    paragraph: list[str] = []
    list_item: list[str] = []
    table_rows: list[str] = []

    def flush() -> None:
        if paragraph:
            elements.append(Element(_inline_text(" ".join(paragraph)), "NarrativeText"))
            paragraph.clear()
        if list_item:
            elements.append(Element(_inline_text(" ".join(list_item)), "ListItem"))
            list_item.clear()
        if table_rows:
            elements.extend(table_blocks(table_rows))
            table_rows.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(1)
            closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            code: list[str] = []
            while index < len(lines) and not closing.match(lines[index]):
                code.append(lines[index])
                index += 1
            index += 1  # the closing fence
            elements.append(Element("\n".join(code), "CodeSnippet"))
            continue
        line = _BLOCKQUOTE.sub("", line)
        if not line.strip():
            flush()
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            flush()
            elements.append(Element(_inline_text(_heading_text(line[heading.end() :])), "Title"))
            continue
        if paragraph and not list_item and _SETEXT_UNDERLINE.match(line):
            elements.append(Element(_inline_text(" ".join(paragraph)), "Title"))
            paragraph.clear()
            continue
        if _THEMATIC_BREAK.match(line):
            flush()
            continue
        if _TABLE_ROW.match(line):
            if not table_rows:
                flush()
            if not _TABLE_DIVIDER.match(line):
                table_rows.append(
                    table_row_line(_inline_text(cell) for cell in line.strip().strip("|").split("|"))
                )
            continue
        item = _MD_LIST_ITEM.match(line)
        if item:
            flush()
            list_item.append(item.group(1) or "")
            continue
        if list_item:
            list_item.append(line.strip())
        else:
            if table_rows:
                flush()
            paragraph.append(line.strip())
    flush()
    return elements


def _heading_text(rest: str) -> str:
    """An ATX heading's text without its optional closing run of #s (`## Title ##`)."""
    rest = rest.strip()
    without_closing = rest.rstrip("#")
    if not without_closing or without_closing[-1] in " \t":
        return without_closing.strip()
    return rest


def _inline_text(text: str) -> str:
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _INLINE_CODE.sub(r"\1", text)
    return text.strip()
