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


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    page: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
