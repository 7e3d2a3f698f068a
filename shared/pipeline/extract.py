"""The extraction stage: a document file in, its `Element`s out, through the offline extractor for its
type (docs/architecture.md, extraction); what a person must act on leaves as `DocumentFailed`."""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from shared.errors import DocumentFailed, ErrorCode
from shared.filetypes import ZIP_TYPES
from shared.pipeline.elements import Element
from shared.pipeline.extractors import describe_failure
from shared.pipeline.extractors.legacy_office import LEGACY_FORMATS, converter_missing
from shared.pipeline.extractors.ocr import OcrOptions, PageReport, ocr_unavailable
from shared.pipeline.extractors.pandoc import pandoc_program
from shared.pipeline.sniff import HEAD_SIZE, check_leading_bytes

Extractor = Callable[[Path], list[Element]]

IMAGE_TYPES = frozenset({"png", "jpg", "tiff", "webp", "bmp"})

# file type -> (importable module, the package a person installs to get it)
_REQUIRED_MODULES: dict[str, tuple[tuple[str, str], ...]] = {
    "pdf": (("pypdfium2", "pypdfium2"),),
    "docx": (("docx", "python-docx"),),
    "pptx": (("pptx", "python-pptx"),),
    "xlsx": (("openpyxl", "openpyxl"),),
    "csv": (),
    "txt": (),
    "md": (),
    "html": (("bs4", "beautifulsoup4"), ("lxml", "lxml")),
    # Mail bodies are often HTML only.
    "eml": (("bs4", "beautifulsoup4"), ("lxml", "lxml")),
    "epub": (("pypandoc", "pypandoc-binary"), ("bs4", "beautifulsoup4"), ("lxml", "lxml")),
    "odt": (("pypandoc", "pypandoc-binary"), ("bs4", "beautifulsoup4"), ("lxml", "lxml")),
    "rtf": (("pypandoc", "pypandoc-binary"), ("bs4", "beautifulsoup4"), ("lxml", "lxml")),
    **{image: (("PIL", "pillow"),) for image in IMAGE_TYPES},
    "doc": (("olefile", "olefile"), ("docx", "python-docx")),
    "xls": (("olefile", "olefile"), ("openpyxl", "openpyxl")),
    "ppt": (("olefile", "olefile"), ("pptx", "python-pptx")),
}
_PANDOC_TYPES = frozenset({"epub", "odt", "rtf"})

_LABELS: dict[str, str] = {
    "pdf": "PDF",
    "docx": "Word document",
    "pptx": "PowerPoint presentation",
    "xlsx": "Excel workbook",
    "csv": "CSV file",
    "txt": "text file",
    "md": "Markdown file",
    "html": "HTML page",
    "eml": "email",
    "epub": "EPUB book",
    "odt": "OpenDocument text",
    "rtf": "RTF document",
    "png": "PNG image",
    "jpg": "JPEG image",
    "tiff": "TIFF image",
    "webp": "WebP image",
    "bmp": "BMP image",
    "doc": "Word document (.doc)",
    "xls": "Excel workbook (.xls)",
    "ppt": "PowerPoint presentation (.ppt)",
}

_NO_TEXT_REASONS: dict[str, str] = {
    "pdf": "the PDF's pages hold no text (and no scanned images)",
    "xlsx": "every sheet of the workbook is empty",
    "csv": "the CSV file has no values",
    "pptx": "the slides and their notes hold no text (images and charts are not read)",
    "docx": "the document holds no text (images are not read)",
    "eml": "the email has no subject, addresses or text body",
    **{image: "OCR found no text in the image" for image in IMAGE_TYPES},
}


def extract(
    path: Path, file_type: str, ocr: OcrOptions | None = None, report: PageReport | None = None
) -> list[Element]:
    """The document's elements in reading order, texts stripped and empty ones dropped.

    `file_type` is a short name from `shared.filetypes`. Scanned PDF pages and images are read by OCR
    with `ocr` (None: OCR off), calling `report(pages read, pages to read)` as it goes. Raises
    `DocumentFailed` for anything about the document (`type_mismatch`, `encrypted`, `corrupt`,
    `no_text`, `too_large`) or about this deployment (`unsupported_type`, `extractor_missing`). A
    missing `path` is this host's problem: `OSError`.
    """
    extractor = _extractor_for(file_type, ocr, report)
    missing = missing_extractor(file_type, ocr)
    if missing is not None:
        raise DocumentFailed(ErrorCode.EXTRACTOR_MISSING, missing)
    # Callers check the leading bytes before any parsing (docs/architecture.md#i5); checking again
    # costs one small read and keeps a renamed file from reaching a parser and failing as `corrupt`.
    with path.open("rb") as document:
        check_leading_bytes(document.read(HEAD_SIZE), file_type)
    label = _LABELS[file_type]
    try:
        if file_type in ZIP_TYPES:
            _check_expansion(path, label)
        raw_elements = extractor(path)
    except DocumentFailed:
        raise
    except Exception as exc:
        if _must_propagate(exc):
            raise
        raise DocumentFailed(
            ErrorCode.CORRUPT, f"The {label} could not be read: {describe_failure(exc)}."
        ) from exc
    elements = _cleaned(raw_elements)
    if not elements:
        reason = _NO_TEXT_REASONS.get(file_type, f"the {label} contains only whitespace")
        raise DocumentFailed(ErrorCode.NO_TEXT, f"No text could be extracted: {reason}.")
    return elements


def extract_data(
    path: str, file_type: str, ocr: dict[str, Any] | None, report: PageReport | None = None
) -> list[dict[str, Any]]:
    """`extract` with JSON data in and out, as the isolated extraction child runs it
    (`shared.pipeline.isolation`): `ocr` is `dataclasses.asdict(OcrOptions)`; the elements come back
    as `Element.to_data()` (`shared.pipeline.elements.elements_from_data` reads them)."""
    options = None if ocr is None else OcrOptions(**ocr)
    return [element.to_data() for element in extract(Path(path), file_type, options, report)]


MAX_EXPANDED_BYTES = 1024**3


def _check_expansion(path: Path, label: str) -> None:
    """Refuse an Office/EPUB package that unpacks to more than 1 GiB (a zip bomb) before parsing it."""
    with zipfile.ZipFile(path) as archive:
        expanded = sum(member.file_size for member in archive.infolist())
    if expanded > MAX_EXPANDED_BYTES:
        raise DocumentFailed(
            ErrorCode.TOO_LARGE,
            f"The {label} unpacks to {expanded / 1024**3:.1f} GiB, more than the 1 GiB Chute reads; "
            "it may be a zip bomb.",
        )


def preload() -> None:
    """Import every extractor this host has. The extraction process (shared.pipeline.isolation_server)
    calls it once, so each document's forked child inherits the libraries instead of importing them
    again (bench/results/REPORT.md: 104 -> 34 ms)."""
    import importlib

    for modules in _REQUIRED_MODULES.values():
        for module, _ in modules:
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
    _extractor_for("txt")  # imports the extractor modules themselves


def missing_extractor(file_type: str, ocr: OcrOptions | None = None) -> str | None:
    """None when this host can extract `file_type` (images: with OCR as `ocr` sets it); else a
    sentence naming what to install.

    Looks modules and files up without importing anything, so the API can check on every presign.
    """
    required = _REQUIRED_MODULES.get(file_type)
    if required is None:
        return f"Chute has no extractor for the file type {file_type!r}."
    for module, package in required:
        if importlib.util.find_spec(module) is None:
            return f"{file_type} extraction needs the {package} package, which is not installed."
    if file_type in _PANDOC_TYPES and pandoc_program() is None:
        return (
            f"{file_type} extraction needs the pandoc program (the pypandoc-binary package bundles it), "
            "which is not installed."
        )
    if file_type in LEGACY_FORMATS:
        return converter_missing()
    if file_type in IMAGE_TYPES:
        unavailable = ocr_unavailable(ocr)
        if unavailable is not None:
            return f"Images are read by OCR. {unavailable}"
    return None


def _extractor_for(
    file_type: str, ocr: OcrOptions | None = None, report: PageReport | None = None
) -> Extractor:
    # Imported here so that loading this module stays cheap; each extractor imports its own
    # heavy library only when it runs.
    from shared.pipeline.extractors import (
        html,
        images,
        legacy_office,
        mail,
        pandoc,
        pdf,
        sheets,
        slides,
        text,
        word,
    )

    extractors: dict[str, Extractor] = {
        "pdf": partial(pdf.extract_pdf, ocr=ocr, report=report),
        "docx": word.extract_docx,
        "pptx": slides.extract_pptx,
        "xlsx": sheets.extract_xlsx,
        "csv": sheets.extract_csv,
        "txt": text.extract_txt,
        "md": text.extract_markdown,
        "html": html.extract_html,
        "eml": mail.extract_eml,
        "epub": pandoc.extract_epub,
        "odt": pandoc.extract_odt,
        "rtf": pandoc.extract_rtf,
        **{image: partial(images.extract_image, ocr=ocr, report=report) for image in IMAGE_TYPES},
    }
    for legacy, (modern, _, _) in LEGACY_FORMATS.items():
        extractors[legacy] = partial(
            legacy_office.extract_legacy, file_type=legacy, modern_extractor=extractors[modern]
        )
    extractor = extractors.get(file_type)
    if extractor is None:
        raise DocumentFailed(
            ErrorCode.UNSUPPORTED_TYPE, f"Chute cannot extract text from files of type {file_type!r}."
        )
    return extractor


def _must_propagate(exc: Exception) -> bool:
    # Running out of memory says nothing about the document, and Celery's soft time limit
    # (billiard's SoftTimeLimitExceeded, an Exception) must reach the task to end it as a timeout.
    return isinstance(exc, MemoryError) or type(exc).__module__.split(".")[0] in {"billiard", "celery"}


def _cleaned(elements: list[Element]) -> list[Element]:
    cleaned: list[Element] = []
    for element in elements:
        # Postgres text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8.
        text = element.text.replace("\x00", "").strip()
        if not text:
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", errors="replace").decode("utf-8")
        if text != element.text:
            element = Element(text=text, type=element.type, page=element.page, origin=element.origin)
        cleaned.append(element)
    return cleaned
