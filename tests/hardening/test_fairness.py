"""Fairness between tenants: while one tenant's flood is queued, another tenant's single document is
taken next, not after the flood. Claims go round-robin between tenants (documents.claim_fairest)."""

from __future__ import annotations

from datetime import datetime

from infra.stack import Stack
from tests.faults.support import query
from tests.helpers import ChuteClient

FLOOD = 25
TEXT = b"Tide tables list the hours of high and low water for each harbour along the coast.\n" * 20


def test_a_flood_from_one_tenant_does_not_hold_back_another(
    stack: Stack, client: ChuteClient, other_client: ChuteClient
) -> None:
    flood = [client.upload(f"flood-{i}.txt", TEXT)["document_id"] for i in range(FLOOD)]
    single = other_client.upload("single.txt", TEXT)["document_id"]
    other_client.wait(single, timeout=300)
    for document_id in flood:
        client.wait(document_id, timeout=300)

    rows = {
        str(r["id"]): r
        for r in query(
            stack, "SELECT id, queued_at, indexed_at FROM documents WHERE id = ANY(%s)", [*flood, single]
        )
    }
    queued: datetime = rows[single]["queued_at"]
    indexed: datetime = rows[single]["indexed_at"]
    flood_rows = [rows[d] for d in flood]
    waiting_then = [r for r in flood_rows if r["queued_at"] < queued and r["indexed_at"] > queued]
    finished_in_between = [r for r in waiting_then if r["indexed_at"] < indexed]
    took = (indexed - queued).total_seconds()
    print(
        f"\n[fairness] {len(waiting_then)} flood documents were waiting when the single one was queued; "
        f"{len(finished_in_between)} finished before it, which took {took:.1f} s"
    )

    assert len(waiting_then) >= 5, "the flood was over before the other tenant's document arrived"
    # At most the flood document a worker was already processing when the single one arrived.
    assert len(finished_in_between) <= 1, finished_in_between
