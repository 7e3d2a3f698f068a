"""Server-Sent Events: a client watches a real ingestion and reconnects."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.helpers import ChuteClient

TEXT = "\n\n".join(
    f"Note {i}: the orchard's apple trees were grafted onto dwarfing rootstock." for i in range(400)
)


def read_events(
    client: ChuteClient, document_id: str, limit: int | None = None, first_seen: threading.Event | None = None
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with client.http.stream("GET", f"/v1/documents/{document_id}/events", timeout=120) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name == "status":
                events.append(json.loads(line.removeprefix("data: ")))
                if first_seen:
                    first_seen.set()
                if limit and len(events) >= limit:
                    break
    return events


def test_events_follow_an_ingestion_in_order_and_end_at_the_final_state(client: ChuteClient) -> None:
    data = TEXT.encode()
    presigned = client.presign("orchard.txt", len(data)).json()
    document_id = presigned["document_id"]
    client.post_to_bucket(presigned["upload"], data)
    collected: list[dict[str, Any]] = []
    first_seen = threading.Event()
    watcher = threading.Thread(
        target=lambda: collected.extend(read_events(client, document_id, first_seen=first_seen))
    )
    watcher.start()
    assert first_seen.wait(30)

    client.complete(document_id)
    watcher.join(timeout=180)

    assert not watcher.is_alive(), "the stream did not end after the final state"
    statuses = [e["status"] for e in collected]
    assert statuses[0] == "awaiting_upload"
    assert statuses[-1] == "indexed"
    assert "processing" in statuses
    order = ["awaiting_upload", "queued", "processing", "indexed"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    progress = [e["progress"] for e in collected if e["status"] == "processing"]
    assert progress == sorted(progress)
    steps = [e["step"] for e in collected if e["status"] == "processing"]
    assert "embedding" in steps
    assert collected[-1]["chunk_count"] > 0


def test_reconnecting_client_gets_the_current_state(client: ChuteClient) -> None:
    queued = client.upload("orchard2.txt", TEXT.encode())
    first = read_events(client, queued["document_id"], limit=1)
    client.wait(queued["document_id"])

    again = read_events(client, queued["document_id"])

    assert first[0]["status"] in ("queued", "processing", "indexed")
    assert [e["status"] for e in again] == ["indexed"]


def test_events_need_the_tenants_key(
    client: ChuteClient, other_client: ChuteClient, anonymous: httpx.Client
) -> None:
    document_id = client.presign("private.txt", 10).json()["document_id"]

    assert other_client.http.get(f"/v1/documents/{document_id}/events").status_code == 404
    assert anonymous.get(f"/v1/documents/{document_id}/events").status_code == 401
