"""Ranking metrics with their standard definitions (as trec_eval and BEIR compute them), and the
collapse of a ranked list of chunks into a ranked list of documents.

A document ranks where its best chunk ranks: `documents_in_rank_order` keeps each document's first
appearance. Relevance judgements are `{document_id: grade}`; a grade of 0 or less is not relevant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def documents_in_rank_order(chunk_documents: Iterable[str]) -> list[str]:
    """The documents of a ranked list of chunks, each at the rank of its best (first) chunk."""
    return list(dict.fromkeys(chunk_documents))


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """nDCG@k: sum of grade / log2(rank + 1) over the first k documents, divided by the same sum
    for the ideal order of the judged documents. 0 when nothing is relevant."""
    gains = [max(0, judged.get(document, 0)) for document in ranked[:k]]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
    ideal = sorted((grade for grade in judged.values() if grade > 0), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Recall@k: the share of the relevant documents found in the first k. 0 when none is relevant."""
    relevant = {document for document, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)
