"""OCR in the extraction stage, on scans generated in the test: scanned PDF pages, mixed PDFs, images
of every accepted format, and the limits (page cap, pixel cap, corrupt files, OCR not installed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from shared.errors import DocumentFailed
from shared.pipeline.extract import extract, missing_extractor
from shared.pipeline.extractors.ocr import OcrOptions, ocr_unavailable
from tests.documents import image_bytes, scan_sentences, scanned_page, scanned_pdf
from tests.unit.sample_documents import text_pdf, write

OCR = OcrOptions()
# A language whose data no machine has: what OCR looks like where Tesseract is not installed.
NOT_INSTALLED = OcrOptions(languages="qqq")
FIRST = scan_sentences(1, 4)
SECOND = scan_sentences(2, 3)


@pytest.fixture(scope="module")
def pages() -> list[Image.Image]:
    return [scanned_page(FIRST), scanned_page(SECOND)]


def words(text: str) -> list[str]:
    return text.lower().split()


def test_scanned_pdf_pages_are_read_with_page_numbers_and_marked_ocr(
    tmp_path: Path, pages: list[Image.Image]
) -> None:
    reports: list[tuple[int, int]] = []
    path = write(tmp_path, "scan.pdf", scanned_pdf(pages))

    elements = extract(path, "pdf", OCR, report=lambda done, total: reports.append((done, total)))

    assert {element.origin for element in elements} == {"ocr"}
    by_page = {page: " ".join(e.text for e in elements if e.page == page) for page in (1, 2)}
    assert words(FIRST[0]) == words(by_page[1])[:10]
    assert words(SECOND[-1]) == words(by_page[2])[-10:]
    assert reports == [(0, 2), (1, 2), (2, 2)]


def test_mixed_pdf_keeps_its_text_pages_and_reads_its_scanned_ones(
    tmp_path: Path, pages: list[Image.Image]
) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for source in (text_pdf(["The quarterly ledger was typed, not scanned."]), scanned_pdf(pages[:1])):
        for page in PdfReader(io.BytesIO(source)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)

    elements = extract(write(tmp_path, "mixed.pdf", out.getvalue()), "pdf", OCR)

    assert (elements[0].page, elements[0].origin) == (1, None)
    assert "quarterly ledger was typed" in elements[0].text
    scanned = [e for e in elements if e.page == 2]
    assert scanned and all(e.origin == "ocr" for e in scanned)
    assert words(" ".join(FIRST)) == words(" ".join(e.text for e in scanned))


def test_blank_pages_are_not_sent_to_ocr(tmp_path: Path) -> None:
    error = _failure(write(tmp_path, "blank.pdf", text_pdf(["", ""])), "pdf", OCR)
    assert error.code == "no_text"
    assert "no text (and no scanned images)" in error.message


@pytest.mark.parametrize(
    ("file_type", "image_format"), [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("bmp", "BMP")]
)
def test_single_images_are_read_without_page_numbers(
    tmp_path: Path, pages: list[Image.Image], file_type: str, image_format: str
) -> None:
    path = write(tmp_path, f"scan.{file_type}", image_bytes(pages[:1], image_format))

    elements = extract(path, file_type, OCR)

    assert {(e.page, e.origin) for e in elements} == {(None, "ocr")}
    assert words(" ".join(FIRST)) == words(" ".join(e.text for e in elements))


def test_multi_page_tiff_pages_are_numbered(tmp_path: Path, pages: list[Image.Image]) -> None:
    elements = extract(write(tmp_path, "scan.tiff", image_bytes(pages, "TIFF")), "tiff", OCR)

    assert words(" ".join(e.text for e in elements if e.page == 2)) == words(" ".join(SECOND))
    assert {e.page for e in elements} == {1, 2}


def test_image_without_text_is_no_text(tmp_path: Path) -> None:
    error = _failure(
        write(tmp_path, "white.png", image_bytes([Image.new("L", (800, 600), 255)], "PNG")), "png", OCR
    )
    assert (error.code, error.message) == (
        "no_text",
        "No text could be extracted: OCR found no text in the image.",
    )


def test_image_above_the_pixel_limit_is_too_large_before_decoding(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000), 1).save(out, "PNG")  # 100 megapixels in a few kilobytes

    error = _failure(write(tmp_path, "bomb.png", out.getvalue()), "png", OCR)

    assert error.code == "too_large"
    assert "10,000 x 10,000" in error.message
    assert "CHUTE_OCR_MAX_IMAGE_PIXELS" in error.message


def test_corrupt_tiff_is_corrupt(tmp_path: Path, pages: list[Image.Image]) -> None:
    whole = image_bytes(pages, "TIFF")
    error = _failure(write(tmp_path, "cut.tiff", whole[:64] + b"\x00" * 200), "tiff", OCR)
    assert error.code == "corrupt"
    assert error.message == (
        "The TIFF image could not be read: its header is damaged or it is not an image of its type."
    )


def test_pages_past_the_cap_are_refused_before_any_is_read(tmp_path: Path, pages: list[Image.Image]) -> None:
    reports: list[tuple[int, int]] = []
    path = write(tmp_path, "scan.pdf", scanned_pdf(pages))

    with pytest.raises(DocumentFailed) as caught:
        extract(path, "pdf", OcrOptions(max_pages=1), report=lambda d, t: reports.append((d, t)))

    assert caught.value.code == "too_large"
    assert "CHUTE_OCR_MAX_PAGES" in caught.value.message
    assert reports == []


def test_scanned_pdf_without_ocr_says_what_to_install(tmp_path: Path, pages: list[Image.Image]) -> None:
    error = _failure(write(tmp_path, "scan.pdf", scanned_pdf(pages)), "pdf", NOT_INSTALLED)

    assert error.code == "no_text"
    assert "scanned" in error.message
    assert "apt-get install tesseract-ocr tesseract-ocr-qqq" in error.message


def test_scanned_pdf_with_ocr_turned_off_says_how_to_turn_it_on(
    tmp_path: Path, pages: list[Image.Image]
) -> None:
    error = _failure(write(tmp_path, "scan.pdf", scanned_pdf(pages)), "pdf", OcrOptions(enabled=False))
    assert error.code == "no_text"
    assert "CHUTE_OCR=auto" in error.message


def test_images_need_ocr_installed() -> None:
    assert missing_extractor("png", OCR) is None
    assert ocr_unavailable(OCR) is None
    missing = missing_extractor("tiff", NOT_INSTALLED)
    assert missing is not None and "apt-get install tesseract-ocr tesseract-ocr-qqq" in missing
    assert missing_extractor("jpg", None) is not None


def _failure(path: Path, file_type: str, ocr: OcrOptions) -> DocumentFailed:
    with pytest.raises(DocumentFailed) as caught:
        extract(path, file_type, ocr)
    return caught.value
