"""Scans and images through the whole pipeline over HTTP: read by OCR, indexed, found by a sentence
printed on them, the OCR step visible while it runs; bombs and broken images end with a code."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from PIL import Image

from shared.pipeline.extractors.ocr import OcrOptions, ocr_unavailable
from tests.documents import image_bytes, scan_sentences, scanned_page, scanned_pdf
from tests.helpers import ChuteClient
from tests.unit.sample_documents import text_pdf

if ocr_unavailable(OcrOptions()) is not None:  # the stack's worker has OCR where this machine does
    pytest.fail(f"these tests need Tesseract on this machine: {ocr_unavailable(OcrOptions())}")


def chunks_of(client: ChuteClient, document: dict[str, Any]) -> list[dict[str, Any]]:
    answer = client.http.get(f"/v1/documents/{document['document_id']}/chunks", params={"limit": 500})
    return list(answer.json()["items"])


def test_scanned_pdf_png_and_tiff_are_indexed_and_found_by_a_sentence_on_them(client: ChuteClient) -> None:
    pdf_line = "Invoice from the Harwich ropemakers guild for ninety fathoms of hemp."
    png_line = "Receipt for seventeen brass telescopes shipped from Lisbon."
    tiff_line = "Minutes of the beekeepers association meeting held in Dundee."
    pdf = client.ingest("scan.pdf", scanned_pdf([scanned_page([*scan_sentences(10, 3), pdf_line])]))
    png = client.ingest("photo.png", image_bytes([scanned_page([png_line, *scan_sentences(11, 3)])], "PNG"))
    tiff_pages = [scanned_page(scan_sentences(12, 4)), scanned_page([tiff_line, *scan_sentences(13, 3)])]
    # The smallest chunks (32 tokens): each page's text fills more than one, so page 2 starts its own.
    tiff = client.ingest(
        "fax.tiff", image_bytes(tiff_pages, "TIFF"), chunking={"chunk_size": 32, "overlap": 0}
    )

    for document, line in ((pdf, pdf_line), (png, png_line), (tiff, tiff_line)):
        hits = client.search(line, k=3, mode="hybrid")
        assert hits[0]["document_id"] == document["document_id"], (document["filename"], hits)
        assert hits[0]["metadata"]["ocr"] is True
    assert {c["page"] for c in chunks_of(client, tiff)} == {1, 2}
    assert {c["page"] for c in chunks_of(client, pdf)} == {1}


def test_mixed_pdf_indexes_its_text_pages_and_its_scanned_pages(client: ChuteClient) -> None:
    from pypdf import PdfReader, PdfWriter

    scanned_lines = [*scan_sentences(20, 2), "The scanned annex lists the cranberry harvest of Wexford."]
    typed_pages = ["The typed cover page names the auditor Margarethe Quill.", *scan_sentences(21, 3)]
    scanned = len(typed_pages) + 1  # the scanned page comes after the typed ones
    writer = PdfWriter()
    for source in (
        text_pdf(typed_pages),
        scanned_pdf([scanned_page(scanned_lines)]),
    ):
        for page in PdfReader(io.BytesIO(source)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)

    # The smallest chunks (32 tokens). A chunk may run from the last typed page into the scanned one
    # (and then says OCR, as some of its text is), but typed text alone is never flagged, and nothing
    # that starts on the scanned page goes unflagged.
    document = client.ingest("mixed.pdf", out.getvalue(), chunking={"chunk_size": 32, "overlap": 0})

    pages = {(c["page"], bool(c["metadata"].get("ocr"))) for c in chunks_of(client, document)}
    assert (1, False) in pages and (scanned, True) in pages, pages
    assert (scanned, False) not in pages, pages
    assert client.search("auditor Margarethe Quill", k=1)[0]["document_id"] == document["document_id"]
    assert client.search(scanned_lines[2], k=1)[0]["document_id"] == document["document_id"]


def test_ocr_shows_as_its_own_step_moving_page_by_page(client: ChuteClient) -> None:
    pages = [scanned_page(scan_sentences(30 + n, 20)) for n in range(6)]
    document_id = client.upload("long-scan.pdf", scanned_pdf(pages))["document_id"]

    seen: list[int] = []
    while (document := client.document(document_id))["status"] not in ("indexed", "failed"):
        if document["step"] == "ocr" and (not seen or seen[-1] != document["progress"]):
            seen.append(document["progress"])
        time.sleep(0.05)

    assert document["status"] == "indexed", document["error"]
    assert len(seen) >= 3, seen  # several distinct page counts, not one jump
    assert seen == sorted(seen)


def test_image_bomb_and_corrupt_tiff_end_with_codes_and_the_worker_goes_on(client: ChuteClient) -> None:
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000), 1).save(bomb, "PNG")
    tiff = image_bytes([scanned_page(["a corrupt fax page"])], "TIFF")

    too_large = client.ingest("bomb.png", bomb.getvalue(), expect="failed")
    corrupt = client.ingest("broken.tiff", tiff[:64] + b"\x00" * 500, expect="failed")

    assert too_large["error"]["code"] == "too_large"
    assert "10,000 x 10,000" in too_large["error"]["message"]
    assert corrupt["error"]["code"] == "corrupt"
    assert client.ingest("after.png", image_bytes([scanned_page(scan_sentences(40, 3))], "PNG"))


def test_ready_says_that_ocr_is_on(client: ChuteClient) -> None:
    ready = client.http.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["ocr"] == "on (Tesseract, languages eng, 150 dpi)"
