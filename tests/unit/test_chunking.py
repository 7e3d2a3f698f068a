"""Chunking: sizes, overlap, titles, pages and element types kept."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from shared.pipeline.chunking import ChunkingSettings, chunk
from shared.pipeline.elements import Element


def test_chunks_stay_within_size_and_keep_pages_and_types() -> None:
    elements = [
        Element("Introduction", "Title", 1),
        Element("Rivers carry sediment to the sea. " * 40, "NarrativeText", 1),
        Element("Methods", "Title", 2),
        Element("We sampled twelve estuaries.", "NarrativeText", 2),
        Element("- a bullet about salinity", "ListItem", 2),
    ]

    chunks = chunk(elements, ChunkingSettings(chunk_size=300, overlap=30))

    assert all(len(c.text) <= 300 for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[0].page == 1
    assert chunks[-1].page == 2
    assert "Methods" in chunks[-1].text and "salinity" in chunks[-1].text
    assert set(chunks[-1].metadata["element_types"]) == {"Title", "NarrativeText", "ListItem"}


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk([Element(text)], ChunkingSettings(chunk_size=200, overlap=50))

    assert len(chunks) > 5
    for previous, current in itertools.pairwise(chunks):
        assert current.text[:20] in previous.text


def test_every_word_survives_chunking() -> None:
    words = [f"token{i}" for i in range(1000)]
    chunks = chunk([Element(" ".join(words))], ChunkingSettings(chunk_size=500, overlap=0))
    assert " ".join(c.text for c in chunks).split() == words


@pytest.mark.parametrize(("size", "overlap"), [(100, 100), (50, 0), (9000, 0), (1000, -1)])
def test_bad_chunking_settings_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValidationError):
        ChunkingSettings(chunk_size=size, overlap=overlap)
