"""Chunking: elements in, chunks the embedding model reads whole out, sized in the model's own tokens.

Sizes count the tokens the model reads, [CLS] and [SEP] included (`shared.pipeline.tokens`), so the
default 256 fills all-MiniLM-L6-v2's window and nothing is cut off. English prose runs about 4 to 5
characters a token (SciFact's abstracts: 4.6; this tokenizer splits rare words into pieces), so 256
tokens hold about 1,100 characters, and 1,000 characters are about 220 tokens.

Sections follow the document's titles: a title starts a new chunk unless the section before it is
under half a chunk, so small sections join their neighbours, and a title is never left at the end of a
chunk without its text. Elements are packed whole while they fit; a longer one fills the rest of the
chunk and continues in pieces cut between words, each repeating the last `overlap` tokens of the one
before. A chunk keeps the page it starts on and the element types it was made from, `"ocr": true`
when some of its text was read by OCR, and, when it starts inside a section, that section's title
(`metadata["section"]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, model_validator
from tokenizers import Encoding

from shared.pipeline.elements import Chunk, Element
from shared.pipeline.tokens import SPECIAL_TOKENS, encode, tokenizer

MIN_CHUNK_TOKENS = 32
MAX_CHUNK_TOKENS = 8192
JOINER = "\n\n"


class ChunkingSettings(BaseModel):
    """Per-upload chunking, in the embedding model's tokens ([CLS] and [SEP] included).

    `chunk_size` above the model's window is allowed when asked for: the model then reads only the
    start of longer chunks, and the worker counts each one (`chute_chunks_truncated_total`).
    `overlap` is at most half of `chunk_size`, so every piece moves on by at least half a chunk.
    """

    chunk_size: int = Field(default=256, ge=MIN_CHUNK_TOKENS, le=MAX_CHUNK_TOKENS)
    overlap: int = Field(default=32, ge=0)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> ChunkingSettings:
        if self.overlap > self.chunk_size // 2:
            raise ValueError(f"overlap must be at most half of chunk_size ({self.chunk_size // 2} tokens)")
        return self


def preload() -> None:
    """Load the model's tokenizer ahead of the first document."""
    tokenizer()


def chunk(elements: Sequence[Element], settings: ChunkingSettings) -> list[Chunk]:
    budget = settings.chunk_size - SPECIAL_TOKENS  # the text's own tokens
    encodings = encode([element.text for element in elements])
    sizes = [len(encoding.ids) for encoding in encodings]
    out = _Chunks(budget)
    for index, element in enumerate(elements):
        size = sizes[index]
        if element.type == "Title" and out.open.tokens:
            following = sizes[index + 1] if index + 1 < len(elements) else 0
            if (
                out.section_tokens >= budget // 2
                or out.open.tokens + size + min(following, budget // 4) > budget
            ):
                out.close()
        if out.open.tokens + size <= budget:
            out.add(element.text, size, element)
            continue
        room = budget - out.open.tokens
        if size <= budget or room < budget // 4:
            out.close()  # too little room left to be worth filling: start the element afresh
            room = budget
        if size <= budget:
            out.add(element.text, size, element)
            continue
        pieces = _split(element.text, encodings[index], room, budget, settings.overlap)
        for text, tokens in pieces[:-1]:
            out.add(text, tokens, element)
            out.close()
        out.add(*pieces[-1], element)  # the tail stays open: small elements after it may join
    out.close()
    return out.chunks


@dataclass
class _Open:
    """The chunk being filled."""

    texts: list[str] = field(default_factory=list)
    tokens: int = 0
    page: int | None = None
    types: set[str] = field(default_factory=set)
    section: str | None = None  # the title of the section the chunk starts in, when not its own
    ocr: bool = False  # some of its text was read by OCR

    def add(self, text: str, tokens: int, element: Element, section: str | None) -> None:
        if not self.texts:
            self.page = element.page
            self.section = None if element.type == "Title" else section
        self.texts.append(text)
        self.tokens += tokens
        self.types.add(element.type)
        self.ocr = self.ocr or element.origin == "ocr"


class _Chunks:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.chunks: list[Chunk] = []
        self.open = _Open()
        self.section: str | None = None
        self.section_tokens = 0  # how long the section so far is: a small one joins the next

    def add(self, text: str, tokens: int, element: Element) -> None:
        self.open.add(text, tokens, element, self.section)
        if element.type == "Title":
            self.section, self.section_tokens = element.text, 0
        self.section_tokens += tokens

    def close(self) -> None:
        text = JOINER.join(self.open.texts).strip()
        if text:
            self.chunks.append(
                Chunk(
                    ordinal=len(self.chunks),
                    text=text,
                    page=self.open.page,
                    metadata={"element_types": sorted(self.open.types)}
                    | ({"section": self.open.section} if self.open.section else {})
                    | ({"ocr": True} if self.open.ocr else {}),
                )
            )
        self.open = _Open()


def _split(text: str, encoding: Encoding, first: int, budget: int, overlap: int) -> list[tuple[str, int]]:
    """`text` in pieces of at most `first`, then `budget` tokens, cut where words meet (a single word
    longer than a piece is cut inside); each piece after the first starts `overlap` tokens early."""
    offsets = encoding.offsets
    count = len(offsets)

    def between_words(index: int) -> bool:  # is there whitespace before token `index`?
        return offsets[index - 1][1] < offsets[index][0]

    pieces: list[tuple[str, int]] = []
    begin, size = 0, first
    while True:
        end = min(begin + size, count)
        if end < count:
            cut = end
            while cut > begin + 1 and not between_words(cut):
                cut -= 1
            end = cut if between_words(cut) else end
        pieces.append((text[offsets[begin][0] : offsets[end - 1][1]], end - begin))
        if end >= count:
            return pieces
        after = max(end - overlap, begin + 1)
        while after < end and not between_words(after):
            after += 1
        begin, size = after, budget
