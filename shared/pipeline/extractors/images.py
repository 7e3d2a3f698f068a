"""Images as documents (PNG, JPEG, TIFF, WebP, BMP): each frame read by OCR, a TIFF's frames as pages."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import DocumentFailed, ErrorCode
from shared.pipeline.elements import Element
from shared.pipeline.extractors.ocr import OcrOptions, PageReader, PageReport, check_page_count, check_pixels

if TYPE_CHECKING:
    from PIL import Image


def extract_image(
    path: Path, ocr: OcrOptions | None = None, report: PageReport | None = None
) -> list[Element]:
    """Every frame's text by OCR; pages are numbered for multi-frame files (TIFF) only.

    The pixel count is checked from the header before any frame is decoded, so a decompression bomb
    ends `too_large` without costing memory.
    """
    from PIL import Image

    if ocr is None:
        raise DocumentFailed(
            ErrorCode.EXTRACTOR_MISSING, "Images can only be read by OCR, which is turned off."
        )
    Image.MAX_IMAGE_PIXELS = None  # our own limit below, with a message that says what to do
    with warnings.catch_warnings():
        # Pillow warns about damaged metadata (EXIF) it skips; only the pixels matter here.
        warnings.simplefilter("ignore", UserWarning)
        return _read_frames(Image.open(path), ocr, report)


def _read_frames(image: Image.Image, ocr: OcrOptions, report: PageReport | None) -> list[Element]:
    with image:
        label = f"{image.format or 'image'} image"
        frames = getattr(image, "n_frames", 1)
        check_page_count(frames, ocr, label)
        elements: list[Element] = []
        with PageReader(ocr, frames, report) as reader:
            for index in range(frames):
                image.seek(index)
                check_pixels(image.width, image.height, ocr, label)
                elements += reader.read(image.convert("L"), index + 1 if frames > 1 else None)
    return elements
