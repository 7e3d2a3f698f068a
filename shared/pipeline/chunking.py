"""Chunking: elements in, chunks of at most `chunk_size` characters out, via unstructured's chunker.

Sections follow the document's titles (`chunk_by_title`); a chunk keeps the page it starts on and
the element types it was made from, and `"ocr": true` when some of its text was read by OCR.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, model_validator

from shared.pipeline.elements import Chunk, Element

if TYPE_CHECKING:
    from unstructured.documents.elements import Element as UElement

_ORIGIN_FIELD = "chute_origin"


class ChunkingSettings(BaseModel):
    chunk_size: int = Field(default=1000, ge=100, le=8000)
    overlap: int = Field(default=100, ge=0, le=4000)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap >= self.chunk_size:
            raise ValueError("overlap must be smaller than chunk_size")
        return self


def preload() -> None:
    """Import unstructured's chunker ahead of the first document."""
    import unstructured.chunking.title  # noqa: F401


def chunk(elements: Sequence[Element], settings: ChunkingSettings) -> list[Chunk]:
    from unstructured.chunking.title import chunk_by_title
    from unstructured.documents.elements import ElementMetadata

    native = [_to_unstructured(element) for element in elements]
    composed: list[UElement] = chunk_by_title(
        native,
        max_characters=settings.chunk_size,
        new_after_n_chars=settings.chunk_size,
        overlap=settings.overlap,
        # Small sections (a title and its one line) join their neighbours instead of standing alone.
        combine_text_under_n_chars=min(settings.chunk_size // 2, 500),
    )
    chunks: list[Chunk] = []
    for piece in composed:
        text = piece.text.strip()
        if not text:
            continue
        metadata: ElementMetadata = piece.metadata
        origin = metadata.orig_elements or []
        types = sorted({type(e).__name__ for e in origin} or {type(piece).__name__})
        details: dict[str, object] = {"element_types": types}
        if any(getattr(e.metadata, _ORIGIN_FIELD, None) == "ocr" for e in origin):
            details["ocr"] = True
        chunks.append(Chunk(ordinal=len(chunks), text=text, page=metadata.page_number, metadata=details))
    return chunks


def _to_unstructured(element: Element) -> UElement:
    from unstructured.documents.elements import TYPE_TO_TEXT_ELEMENT_MAP, ElementMetadata, Text

    cls = TYPE_TO_TEXT_ELEMENT_MAP.get(element.type, Text)
    metadata = ElementMetadata(page_number=element.page)
    if element.origin is not None:
        # An ad-hoc field: unstructured keeps it on the chunk's `orig_elements`.
        setattr(metadata, _ORIGIN_FIELD, element.origin)
    return cls(text=element.text, metadata=metadata)
