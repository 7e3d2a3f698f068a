"""Chunking: sizes in the model's tokens, overlap, titles, pages and element types kept."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from shared.pipeline.chunking import ChunkingSettings, chunk
from shared.pipeline.elements import Element
from shared.pipeline.tokens import LOCAL_WINDOW, token_counts

# Dense scientific prose: about 3.5 characters a token, where 1,000 characters overflow the window.
DENSE = (
    "Immunohistochemical quantification of phosphorylated STAT3 (pY705) in CD34+ haematopoietic "
    "progenitors revealed dysregulated JAK2-V617F-dependent signalling; IL-6/gp130 blockade with "
    "tocilizumab (8 mg/kg, q4w) attenuated erythrocytosis (HCT 0.52 -> 0.45, p = 0.003). "
) * 20


def test_chunks_stay_within_size_and_keep_pages_and_types() -> None:
    elements = [
        Element("Introduction", "Title", 1),
        Element("Rivers carry sediment to the sea. " * 40, "NarrativeText", 1),
        Element("Methods", "Title", 2),
        Element("We sampled twelve estuaries.", "NarrativeText", 2),
        Element("- a bullet about salinity", "ListItem", 2),
    ]

    chunks = chunk(elements, ChunkingSettings(chunk_size=64, overlap=8))

    assert max(token_counts([c.text for c in chunks])) <= 64
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[0].page == 1
    assert chunks[-1].page == 2
    assert chunks[-1].text.startswith("Methods") and "salinity" in chunks[-1].text
    assert set(chunks[-1].metadata["element_types"]) == {"Title", "NarrativeText", "ListItem"}
    # A chunk that starts inside a section knows its title; one that starts with the title does not.
    assert chunks[1].metadata["section"] == "Introduction"
    assert "section" not in chunks[0].metadata and "section" not in chunks[-1].metadata


def test_no_chunk_is_longer_than_the_model_reads_by_default() -> None:
    chunks = chunk([Element("Results", "Title"), Element(DENSE)], ChunkingSettings())

    counts = token_counts([c.text for c in chunks])
    assert max(counts) <= LOCAL_WINDOW
    assert min(counts[:-1]) > LOCAL_WINDOW * 3 // 4  # full chunks, not slivers
    # 1,000 characters of this text are more than the model reads: sizes in characters would overflow.
    assert token_counts([DENSE[:1000]])[0] > LOCAL_WINDOW


def test_a_size_above_the_window_is_honoured_when_asked_for() -> None:
    chunks = chunk([Element(DENSE)], ChunkingSettings(chunk_size=512, overlap=0))
    assert max(token_counts([c.text for c in chunks])) > LOCAL_WINDOW


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk([Element(text)], ChunkingSettings(chunk_size=64, overlap=16))

    assert len(chunks) > 5
    for previous, current in itertools.pairwise(chunks):
        assert current.text[:20] in previous.text


def test_every_word_survives_chunking() -> None:
    words = [f"token{i}" for i in range(1000)]
    chunks = chunk([Element(" ".join(words))], ChunkingSettings(chunk_size=100, overlap=0))
    assert " ".join(c.text for c in chunks).split() == words


@pytest.mark.parametrize(
    ("size", "overlap"),
    [
        (16, 0),  # below the floor of 32 tokens
        (9000, 0),  # above 8,192
        (256, -1),
        (256, 129),  # overlap over half the size
        (100, 100),
    ],
)
def test_bad_chunking_settings_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValidationError):
        ChunkingSettings(chunk_size=size, overlap=overlap)


def test_overlap_of_half_the_size_is_the_most_accepted() -> None:
    assert ChunkingSettings(chunk_size=256, overlap=128).overlap == 128
