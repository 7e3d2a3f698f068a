"""PowerPoint (.pptx) text through python-pptx: titles, text frames, tables and speaker notes per slide."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from shared.pipeline.elements import Element
from shared.pipeline.extractors import table_blocks, table_row_line

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_EXPLICIT_BULLETS = (f"{_A}buChar", f"{_A}buAutoNum")
_NO_BULLET = f"{_A}buNone"


def extract_pptx(path: Path) -> list[Element]:
    from pptx import Presentation

    presentation = Presentation(str(path))
    elements: list[Element] = []
    for slide_number, slide in enumerate(presentation.slides, start=1):
        for shape in _shapes_in_order(slide.shapes):
            elements += _shape_elements(shape, slide_number)
        if slide.has_notes_slide:
            notes_frame = slide.notes_slide.notes_text_frame
            if notes_frame is not None:
                elements.append(Element(_frame_text(notes_frame), "NarrativeText", slide_number))
    return elements


def _shapes_in_order(shapes: Iterable[Any]) -> Iterator[Any]:
    """Every shape in document order, with the members of group shapes in place of the group."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    stack: list[Iterator[Any]] = [iter(shapes)]
    while stack:
        shape = next(stack[-1], None)
        if shape is None:
            stack.pop()
        elif shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            stack.append(iter(shape.shapes))
        else:
            yield shape


def _shape_elements(shape: Any, slide_number: int) -> list[Element]:
    if getattr(shape, "has_table", False):
        return table_blocks(_table_lines(shape.table), slide_number)
    if not shape.has_text_frame:
        return []
    role = _placeholder_role(shape)
    if role == "title":
        return [Element(_frame_text(shape.text_frame), "Title", slide_number)]
    elements: list[Element] = []
    for paragraph in shape.text_frame.paragraphs:
        text = paragraph.text.replace("\v", "\n")
        if text.strip():
            element_type = "ListItem" if _is_bulleted(paragraph, role == "body") else "NarrativeText"
            elements.append(Element(text, element_type, slide_number))
    return elements


def _placeholder_role(shape: Any) -> str:
    from pptx.enum.shapes import PP_PLACEHOLDER

    if not shape.is_placeholder:
        return "free"
    kind = shape.placeholder_format.type
    if kind in {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}:
        return "title"
    if kind in {PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT, PP_PLACEHOLDER.VERTICAL_BODY}:
        return "body"
    return "other"


def _is_bulleted(paragraph: Any, in_body_placeholder: bool) -> bool:
    """Body placeholders inherit bullets from the slide master unless a paragraph turns them off."""
    properties = paragraph._p.pPr
    if properties is not None:
        if properties.find(_NO_BULLET) is not None:
            return False
        if any(properties.find(tag) is not None for tag in _EXPLICIT_BULLETS):
            return True
    return in_body_placeholder or paragraph.level > 0


def _frame_text(text_frame: Any) -> str:
    return "\n".join(paragraph.text.replace("\v", "\n") for paragraph in text_frame.paragraphs)


def _table_lines(table: Any) -> list[str]:
    lines: list[str] = []
    for row in table.rows:
        # A spanned cell is covered by its merge origin, which already holds the text.
        cells = ["" if cell.is_spanned else cell.text for cell in row.cells]
        lines.append(table_row_line(cells))
    return lines
