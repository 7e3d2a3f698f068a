"""CHUTE_MAX_CHUNKS is enforced before embedding: by a lower bound from the characters before
chunking (a huge text is never tokenised), then by the exact count once chunked."""

from __future__ import annotations

import pytest

from shared.errors import DocumentFailed
from shared.pipeline.chunking import ChunkingSettings, chunk
from shared.pipeline.elements import Element
from shared.pipeline.ingest import _check_chunk_count, _fewest_chunks

SETTINGS = ChunkingSettings(chunk_size=64, overlap=0)


def test_a_text_too_big_for_the_cap_is_refused_before_chunking() -> None:
    huge = [Element("word " * 2_000_000)]  # 10 MB: at least 19,531 chunks of 64 tokens
    assert _fewest_chunks(huge, SETTINGS) > 10_000
    with pytest.raises(DocumentFailed) as refused:
        _check_chunk_count(_fewest_chunks(huge, SETTINGS), 10_000)
    assert refused.value.code == "too_large"
    assert "CHUTE_MAX_CHUNKS" in refused.value.message


def test_the_exact_count_is_checked_where_the_estimate_passes() -> None:
    # Dense text: fewer characters per token than the bound assumes, so only the count catches it.
    elements = [Element("Immunohistochemistry of JAK2-V617F (pY705) in CD34+ cells. " * 60)]
    chunks = chunk(elements, SETTINGS)
    cap = len(chunks) - 1
    _check_chunk_count(_fewest_chunks(elements, SETTINGS), cap)  # passes: a lower bound
    with pytest.raises(DocumentFailed) as refused:
        _check_chunk_count(len(chunks), cap)
    assert refused.value.code == "too_large"
