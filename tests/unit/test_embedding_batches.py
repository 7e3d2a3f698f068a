"""The embedding server's batch plan: length-sorted batches within the token budget, padding counted."""

from __future__ import annotations

import numpy as np

from shared.embedding_server.batching import Text, pad, plan_batches


def texts(*lengths: int) -> list[Text]:
    return [Text(np.arange(1, n + 1, dtype=np.int32), None, row) for row, n in enumerate(lengths)]


def test_batches_are_longest_first_and_within_the_padded_budget() -> None:
    window = texts(10, 200, 30, 256, 12, 250, 40, 8)

    batches = plan_batches(window, max_tokens=512)

    assert sorted(t.row for batch in batches for t in batch) == list(range(len(window)))
    lengths = [[len(t.ids) for t in batch] for batch in batches]
    assert lengths == [[256, 250], [200, 40], [30, 12, 10, 8]]
    assert all(len(b) * b[0] <= 512 for b in lengths)


def test_a_text_longer_than_the_budget_runs_alone() -> None:
    assert [len(b) for b in plan_batches(texts(256, 256, 5), max_tokens=200)] == [1, 1, 1]


def test_pad_right_pads_ids_and_masks_them() -> None:
    ids, mask = pad(texts(3, 1))

    assert ids.tolist() == [[1, 2, 3], [1, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == np.int64
