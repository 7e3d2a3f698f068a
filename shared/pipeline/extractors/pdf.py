"""PDF text through pypdfium2: one element per page that has a text layer."""

from __future__ import annotations

import re
from pathlib import Path

from shared.errors import DocumentFailed
from shared.pipeline.elements import Element

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


def extract_pdf(path: Path) -> list[Element]:
    import pypdfium2

    _refuse_truncated(path)
    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        raise _loading_failure(exc) from exc
    elements: list[Element] = []
    try:
        for page_index in range(len(document)):
            page = document[page_index]
            try:
                text_page = page.get_textpage()
                try:
                    text = _normalized(text_page.get_text_bounded())
                finally:
                    text_page.close()
            finally:
                page.close()
            if text.strip():
                elements.append(Element(text, "NarrativeText", page_index + 1))
    finally:
        document.close()
    return elements


def _refuse_truncated(path: Path) -> None:
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - _EOF_WINDOW))
        tail = file.read()
    if _EOF_MARKER not in tail:
        raise DocumentFailed(
            "corrupt",
            "The PDF is incomplete: it does not end with the %%EOF marker, so the file was probably "
            "cut off during upload or download. Upload the complete file again.",
        )


def _loading_failure(exc: Exception) -> DocumentFailed:
    code = getattr(exc, "err_code", None)
    if code == _ERR_PASSWORD:
        return DocumentFailed(
            "encrypted",
            "The PDF is password-protected and needs a password to open. "
            "Remove the password and upload it again.",
        )
    if code == _ERR_SECURITY:
        return DocumentFailed(
            "encrypted",
            "The PDF uses an encryption scheme that cannot be opened here. "
            "Save an unencrypted copy and upload that.",
        )
    if code == _ERR_FORMAT:
        return DocumentFailed(
            "corrupt", "The PDF could not be read: its structure is damaged or it is not a PDF."
        )
    return DocumentFailed("corrupt", f"The PDF could not be read: {exc}.")


def _normalized(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _NON_TEXT_CHARS.sub("", text)
