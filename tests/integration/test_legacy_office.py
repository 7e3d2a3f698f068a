"""Legacy Office files over HTTP: a .doc, .xls and .ppt (made by LibreOffice) are indexed and found."""

from __future__ import annotations

from pathlib import Path

from tests.documents import legacy_office
from tests.helpers import ChuteClient
from tests.unit.sample_documents import deck_pptx, report_docx, revenue_xlsx


def test_doc_xls_and_ppt_are_indexed_and_found(client: ChuteClient, tmp_path: Path) -> None:
    modern = [report_docx(tmp_path / "report.docx"), revenue_xlsx(tmp_path / "revenue.xlsx")]
    files = legacy_office([*modern, deck_pptx(tmp_path / "deck.pptx")], tmp_path)

    documents = {kind: client.ingest(path.name, path.read_bytes()) for kind, path in files.items()}

    for kind, query in (
        ("doc", "Open the Lisbon office"),
        ("xls", "Figures are unaudited"),
        ("ppt", "Remember to mention the hiring budget"),
    ):
        hits = client.search(query, k=3, mode="hybrid")
        assert hits[0]["document_id"] == documents[kind]["document_id"], (kind, hits)
    assert documents["ppt"]["chunk_count"] >= 1
