"""What the worker's log says about a document: every line of its task names the document and the
task, so an operator can follow one document (or one task) through the log with one filter."""

from __future__ import annotations

import json
from typing import Any

from infra.stack import Stack
from tests.helpers import ChuteClient


def _worker_lines(stack: Stack) -> list[dict[str, Any]]:
    log = stack.root / "logs" / "worker.log"
    return [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]


def test_every_line_of_a_documents_task_carries_its_document_and_task_ids(
    stack: Stack, client: ChuteClient
) -> None:
    first = client.ingest("first.txt", b"The first logbook names the lighthouse keeper.\n")
    second = client.ingest("second.txt", b"The second logbook names the harbour master.\n")

    lines = _worker_lines(stack)
    for document in (first, second):
        mine = [line for line in lines if line.get("document_id") == document["document_id"]]
        events = [line["event"] for line in mine]
        assert {"ingest.claimed", "ingest.stage.done", "ingest.indexed"} <= set(events), events
        # One task processed the document, and each of its lines says which: the document's own.
        assert {line.get("task_id") for line in mine} == {document["task_id"]}, mine
