"""Prometheus metrics from the API (documents, queue) and from the worker (steps, outcomes)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import WORKER_METRICS_PORT
from tests.helpers import ChuteClient


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_api_and_worker_export_metrics(client: ChuteClient, anonymous: httpx.Client) -> None:
    client.ingest("metered.txt", b"Metrics make the invisible queue visible to operators.\n")
    client.ingest("broken.pdf", b"%PDF-1.7\nthis is not a real pdf\n%%EOF\n", expect="failed")

    api = samples(anonymous.get("/metrics").text)
    worker = samples(httpx.get(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics", timeout=10).text)

    assert api[("chute_documents", (("status", "indexed"),))] >= 1
    assert api[("chute_documents", (("status", "failed"),))] >= 1
    assert api[("chute_documents_failed", (("code", "corrupt"),))] >= 1
    assert ("chute_queue_depth", ()) in api
    assert ("chute_oldest_queued_seconds", ()) in api
    assert worker[("chute_documents_processed_total", (("outcome", "indexed"),))] >= 1
    assert worker[("chute_document_failures_total", (("code", "corrupt"),))] >= 1
    assert worker[("chute_ingest_step_seconds_count", (("step", "embed"),))] >= 1
    assert worker[("chute_ingest_step_seconds_count", (("step", "extract"),))] >= 2
