"""The plain data the pipeline stages pass along."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Element:
    """A piece of a document's text with its kind and page, as extractors yield it.

    `type` uses unstructured's category names (`Title`, `NarrativeText`, `ListItem`, `Table`,
    `Header`, `Footer`, `EmailHeader`, `Text`...) so its chunkers treat it right. `page` is 1-based:
    a PDF page, a slide, a spreadsheet sheet; None where a format has no pages. `origin` is "ocr"
    for text read from an image (a scanned page), None for text the file holds as text.
    """

    text: str
    type: str = "NarrativeText"
    page: int | None = None
    origin: str | None = None

    def to_data(self) -> dict[str, Any]:
        """As JSON data (how the extraction child sends it: shared.pipeline.isolation)."""
        return {"text": self.text, "type": self.type, "page": self.page, "origin": self.origin}


def elements_from_data(data: Any) -> list[Element]:
    """The elements `Element.to_data` made, checked field by field: ValueError on anything else."""
    if not isinstance(data, list):
        raise ValueError("elements must be a list")
    elements = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"text", "type", "page", "origin"}:
            raise ValueError("an element must have exactly text, type, page and origin")
        text, kind, page, origin = item["text"], item["type"], item["page"], item["origin"]
        if not (
            isinstance(text, str)
            and isinstance(kind, str)
            and (page is None or type(page) is int)
            and (origin is None or isinstance(origin, str))
        ):
            raise ValueError("an element's fields have the wrong types")
        elements.append(Element(text=text, type=kind, page=page, origin=origin))
    return elements


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    page: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
