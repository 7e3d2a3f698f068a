"""PDF text through pypdfium2: one element per page from its text layer, or OCR where it has none.

A page is read by OCR when it shows an image and its text layer holds fewer than
`SCANNED_MAX_CHARS` characters, or fewer than `STAMPED_SCAN_MAX_CHARS` when images cover at least
half the page (a scan that its scanner stamped with a header or page number). Blank pages (no image)
are never sent to OCR. Text pages keep the fast path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import DocumentFailed, ErrorCode
from shared.pipeline.elements import Element
from shared.pipeline.extractors.ocr import (
    OcrOptions,
    PageReader,
    PageReport,
    check_page_count,
    ocr_unavailable,
)

if TYPE_CHECKING:
    from PIL.Image import Image

SCANNED_MAX_CHARS = 16
STAMPED_SCAN_MAX_CHARS = 200
_STAMPED_SCAN_COVERAGE = 0.5

# PDFium's document-loading error codes (FPDF_ERR_*).
_ERR_FORMAT = 3
_ERR_PASSWORD = 4
_ERR_SECURITY = 5

# Acrobat requires `%%EOF` within the last 1024 bytes; without it the upload was cut off. PDFium
# would otherwise rebuild what it can and index half a document without a word of warning.
_EOF_MARKER = b"%%EOF"
_EOF_WINDOW = 1024

# PDFium writes \x02 where a word was hyphenated across lines (and joins the halves), and unmapped
# glyphs come out as other control characters; none of them is text.
_NON_TEXT_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def extract_pdf(path: Path, ocr: OcrOptions | None = None, report: PageReport | None = None) -> list[Element]:
    """Text pages through the text layer; scanned pages through OCR when `ocr` allows it.

    With OCR off or not installed, scanned pages are skipped, and a PDF of scanned pages only fails
    `no_text` with the reason (what to install).
    """
    import pypdfium2

    _refuse_truncated(path)
    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        raise _loading_failure(exc) from exc
    try:
        elements: dict[int, list[Element]] = {}
        scanned: list[int] = []
        for index in range(len(document)):
            page = document[index]
            try:
                text = _page_text(page)
                if _is_scanned(page, text):
                    scanned.append(index)
                elif text.strip():
                    elements[index] = [Element(text, "NarrativeText", index + 1)]
            finally:
                page.close()
        unavailable = ocr_unavailable(ocr)
        if scanned and unavailable is not None and not elements:
            raise DocumentFailed(
                ErrorCode.NO_TEXT,
                f"No text could be extracted: the PDF is scanned (pages without a text layer). {unavailable}",
            )
        if scanned and ocr is not None and unavailable is None:
            check_page_count(len(scanned), ocr, "PDF")
            with PageReader(ocr, len(scanned), report) as reader:
                for index in scanned:
                    elements[index] = reader.read(_rendered(document, index, ocr), index + 1)
    finally:
        document.close()
    return [element for index in sorted(elements) for element in elements[index]]


def _page_text(page: Any) -> str:
    text_page = page.get_textpage()
    try:
        return _normalized(text_page.get_text_bounded())
    finally:
        text_page.close()


def _is_scanned(page: Any, text: str) -> bool:
    import pypdfium2.raw as pdfium_c

    characters = len("".join(text.split()))
    if characters >= STAMPED_SCAN_MAX_CHARS:
        return False
    width, height = page.get_size()
    covered = 0.0
    for item in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3):
        left, bottom, right, top = item.get_bounds()
        covered += max(0.0, right - left) * max(0.0, top - bottom)
        if characters < SCANNED_MAX_CHARS or covered >= _STAMPED_SCAN_COVERAGE * width * height:
            return True
    return False


def _rendered(document: Any, index: int, ocr: OcrOptions) -> Image:
    """The page as a grayscale image at `ocr.dpi`, or less where that would pass the pixel limit."""
    page = document[index]
    try:
        width, height = page.get_size()  # in points, 72 to the inch
        scale = min(ocr.dpi / 72, (ocr.max_image_pixels / max(1.0, width * height)) ** 0.5)
        bitmap = page.render(scale=scale, grayscale=True)
        try:
            image: Image = bitmap.to_pil().copy()
            return image
        finally:
            bitmap.close()
    finally:
        page.close()


def _refuse_truncated(path: Path) -> None:
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - _EOF_WINDOW))
        tail = file.read()
    if _EOF_MARKER not in tail:
        raise DocumentFailed(
            ErrorCode.CORRUPT,
            "The PDF is incomplete: it does not end with the %%EOF marker, so the file was probably "
            "cut off during upload or download. Upload the complete file again.",
        )


def _loading_failure(exc: Exception) -> DocumentFailed:
    code = getattr(exc, "err_code", None)
    if code == _ERR_PASSWORD:
        return DocumentFailed(
            ErrorCode.ENCRYPTED,
            "The PDF is password-protected and needs a password to open. "
            "Remove the password and upload it again.",
        )
    if code == _ERR_SECURITY:
        return DocumentFailed(
            ErrorCode.ENCRYPTED,
            "The PDF uses an encryption scheme that cannot be opened here. "
            "Save an unencrypted copy and upload that.",
        )
    if code == _ERR_FORMAT:
        return DocumentFailed(
            ErrorCode.CORRUPT, "The PDF could not be read: its structure is damaged or it is not a PDF."
        )
    return DocumentFailed(ErrorCode.CORRUPT, f"The PDF could not be read: {exc}.")


def _normalized(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _NON_TEXT_CHARS.sub("", text)
