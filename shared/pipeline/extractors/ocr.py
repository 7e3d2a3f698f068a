"""Optical character recognition: page images in, text out, through Tesseract (tesserocr binding).

tesserocr keeps one Tesseract engine loaded for all of a document's pages; pytesseract starts the
`tesseract` program (and loads its model) once per page: it needed 1.2-1.5x tesserocr's CPU time
per page on the same pages at 100-300 dpi, for the same words (bench/results/REPORT.md, "OCR"). The
language data comes from Debian's `tesseract-ocr-LANG` packages; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import DocumentFailed, ErrorCode
from shared.pipeline.elements import Element

if TYPE_CHECKING:
    from PIL.Image import Image

    from shared.settings import Settings

# Called with (pages read, pages to read) as OCR goes, so a long scan shows it is moving.
PageReport = Callable[[int, int], None]

# Where Debian (5.x, 4.x) and source builds put Tesseract's language data; $TESSDATA_PREFIX first.
_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)
_LANGUAGE = re.compile(r"^[A-Za-z0-9_]+$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How scans and images are read. `enabled` is False when CHUTE_OCR=off."""

    languages: str = "eng"  # Tesseract's codes joined by "+", e.g. "eng+deu"
    dpi: int = 150
    max_pages: int = 500
    max_image_pixels: int = 50_000_000
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> OcrOptions:
        return cls(
            languages=settings.ocr_languages,
            dpi=settings.ocr_dpi,
            max_pages=settings.ocr_max_pages,
            max_image_pixels=settings.ocr_max_image_pixels,
            enabled=settings.ocr != "off",
        )


def install_hint(languages: str = "eng") -> str:
    """The one command that installs Tesseract with the language data for `languages`."""
    packages = [
        "tesseract-ocr",
        *(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in _codes(languages)),
    ]
    return "apt-get install " + " ".join(dict.fromkeys(packages))


def ocr_unavailable(options: OcrOptions | None) -> str | None:
    """None when OCR can run with `options`; else a sentence saying why not and how to turn it on.

    None options mean OCR was not asked for. Looks for files only: cheap enough for every presign.
    """
    if options is None or not options.enabled:
        return "OCR is turned off on this Chute (CHUTE_OCR=off); set CHUTE_OCR=auto to read scans and images."
    if importlib.util.find_spec("tesserocr") is None:
        return "OCR needs the tesserocr package, which is not installed (pip install tesserocr)."
    missing = [code for code in _codes(options.languages) if _tessdata_dir(code) is None]
    if missing:
        return (
            f"OCR is not installed: Tesseract's language data for {'+'.join(missing)} was not found. "
            f"Install it with `{install_hint(options.languages)}` (Debian/Ubuntu) and restart the worker."
        )
    return None


def ocr_state(options: OcrOptions) -> str:
    """One line for people: whether scans and images are read, and if not, what turns OCR on."""
    unavailable = ocr_unavailable(options)
    if unavailable is None:
        return f"on (Tesseract, languages {options.languages}, {options.dpi} dpi)"
    return f"off: {unavailable}"


def check_page_count(pages: int, options: OcrOptions, label: str) -> None:
    """Refuse a document with more pages to OCR than CHUTE_OCR_MAX_PAGES, before reading any."""
    if pages > options.max_pages:
        raise DocumentFailed(
            ErrorCode.TOO_LARGE,
            f"The {label} has {pages:,} pages to read by OCR; the limit is {options.max_pages:,} "
            "(CHUTE_OCR_MAX_PAGES). Split it, or raise the limit.",
        )


def check_pixels(width: int, height: int, options: OcrOptions, label: str) -> None:
    """Refuse an image bigger than CHUTE_OCR_MAX_IMAGE_PIXELS before it is decoded (decompression bombs)."""
    if width * height > options.max_image_pixels:
        raise DocumentFailed(
            ErrorCode.TOO_LARGE,
            f"The {label} is {width:,} x {height:,} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {options.max_image_pixels / 1e6:.0f} megapixels (CHUTE_OCR_MAX_IMAGE_PIXELS). "
            "It may be a decompression bomb; scan at a lower resolution.",
        )


class PageReader:
    """One Tesseract engine reading a document's page images in order, reporting each page done.

    Use as a context manager; `read` returns the page's paragraphs as `Element`s marked `origin="ocr"`.
    """

    def __init__(self, options: OcrOptions, total: int, report: PageReport | None) -> None:
        unavailable = ocr_unavailable(options)
        if unavailable is not None:
            raise DocumentFailed(ErrorCode.EXTRACTOR_MISSING, unavailable)
        self._options = options
        self._total = total
        self._done = 0
        self._report = report
        self._api: Any = None

    def __enter__(self) -> PageReader:
        import tesserocr

        codes = _codes(self._options.languages)
        folder = _tessdata_dir(codes[0])
        self._api = tesserocr.PyTessBaseAPI(path=f"{folder}/", lang="+".join(codes))
        if self._report is not None:
            self._report(0, self._total)
        return self

    def __exit__(self, *exc: object) -> None:
        self._api.End()

    def read(self, image: Image, page: int | None) -> list[Element]:
        self._api.SetImage(image)
        text: str = self._api.GetUTF8Text()
        self._done += 1
        if self._report is not None:
            self._report(self._done, self._total)
        paragraphs = (" ".join(part.split()) for part in _PARAGRAPH_BREAK.split(text))
        return [Element(p, "NarrativeText", page, origin="ocr") for p in paragraphs if p]


def _codes(languages: str) -> list[str]:
    codes = [code.strip() for code in languages.split("+") if code.strip()]
    for code in codes:
        if not _LANGUAGE.match(code):
            raise ValueError(f"not a Tesseract language code: {code!r}")
    return codes or ["eng"]


def _tessdata_dir(code: str) -> Path | None:
    prefix = os.environ.get("TESSDATA_PREFIX")
    for folder in ([prefix] if prefix else []) + list(_TESSDATA_DIRS):
        if (Path(folder) / f"{code}.traineddata").is_file():
            return Path(folder)
    return None
