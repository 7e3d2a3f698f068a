"""The retrieval benchmark's scorer against values worked out by hand (trec_eval's definitions)."""

from __future__ import annotations

import math
import random

import pytest

from bench.scoring import documents_in_rank_order, ndcg_at, recall_at


def test_ndcg_matches_the_hand_computed_value() -> None:
    # Relevant documents a (grade 2) and b (grade 1); the ranking finds b at rank 2, a at rank 4.
    judged = {"a": 2, "b": 1, "z": 0}
    ranked = ["x", "b", "z", "a", "y"]
    dcg = 1 / math.log2(3) + 2 / math.log2(5)  # = 0.6309 + 0.8614
    idcg = 2 / math.log2(2) + 1 / math.log2(3)  # = 2.6309
    assert ndcg_at(ranked, judged, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(ranked, judged, 10) == pytest.approx(0.56721, abs=1e-5)
    # Cut at 3: a (rank 4) no longer counts; the ideal order is cut at 3 too.
    assert ndcg_at(ranked, judged, 3) == pytest.approx((1 / math.log2(3)) / idcg)


def test_ndcg_is_one_for_the_ideal_order_and_zero_without_hits() -> None:
    assert ndcg_at(["a", "b"], {"a": 1, "b": 1}, 10) == pytest.approx(1.0)
    assert ndcg_at(["x", "y"], {"a": 1}, 10) == 0.0
    assert ndcg_at(["a"], {}, 10) == 0.0


def test_recall_counts_relevant_documents_within_the_cut() -> None:
    judged = {"a": 1, "b": 1, "c": 1, "d": 0}
    ranked = ["a", "x", "d", "b", "c"]
    assert recall_at(ranked, judged, 100) == pytest.approx(1.0)
    assert recall_at(ranked, judged, 4) == pytest.approx(2 / 3)
    assert recall_at(ranked, judged, 1) == pytest.approx(1 / 3)


def test_a_document_ranks_where_its_best_chunk_ranks() -> None:
    chunks = ["d2", "d1", "d2", "d3", "d1"]
    assert documents_in_rank_order(chunks) == ["d2", "d1", "d3"]
    # Collapsing before scoring: d1's second chunk does not count twice.
    assert ndcg_at(documents_in_rank_order(chunks), {"d1": 1}, 10) == pytest.approx(1 / math.log2(3))


def test_scorer_agrees_with_trec_eval_on_random_rankings() -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    documents = [f"d{i}" for i in range(60)]
    qrels = {
        f"q{q}": {d: rng.choice([1, 1, 2]) for d in rng.sample(documents, rng.randint(1, 5))}
        for q in range(30)
    }
    runs = {q: rng.sample(documents, 40) for q in qrels}
    # trec_eval orders by score: give rank r the score 1000 - r.
    scored = {q: {d: float(1000 - r) for r, d in enumerate(ranked)} for q, ranked in runs.items()}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.30"}).evaluate(
        scored
    )

    for q, ranked in runs.items():
        assert ndcg_at(ranked, qrels[q], 10) == pytest.approx(reference[q]["ndcg_cut_10"], abs=1e-4)
        assert recall_at(ranked, qrels[q], 10) == pytest.approx(reference[q]["recall_10"], abs=1e-4)
        assert recall_at(ranked, qrels[q], 30) == pytest.approx(reference[q]["recall_30"], abs=1e-4)
