"""Documents the integration tests make for themselves (no third-party files in the repo)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any


def pdf_from_objects(objects: dict[int, bytes]) -> bytes:
    """A PDF file around numbered objects (object 1 is the catalog), with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for object_id in sorted(objects):
        offsets[object_id] = out.tell()
        out.write(b"%d 0 obj\n%s\nendobj\n" % (object_id, objects[object_id]))
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for object_id in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[object_id])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """An incompressible RGB PNG: makes a document big without giving it more text to embed."""
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 0))
        + chunk(b"IEND", b"")
    )


def big_docx(min_bytes: int, sentence: str) -> bytes:
    """A DOCX of at least `min_bytes` (an embedded noise image) with a few paragraphs of text."""
    from docx import Document
    from docx.shared import Inches

    document = Document()
    document.add_heading("Field report", level=1)
    for _ in range(3):
        document.add_paragraph(sentence)
    side = int((min_bytes / 3) ** 0.5) + 16
    document.add_picture(io.BytesIO(noise_png(side, side)), width=Inches(4))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# Words Tesseract reads reliably in the default font; sentences made of them are the ground truth.
SCAN_WORDS = [
    "harbour",
    "ledger",
    "keeper",
    "noted",
    "vessels",
    "cargo",
    "wool",
    "timber",
    "grain",
    "evening",
    "storm",
    "northern",
    "light",
    "copper",
    "anchor",
    "tide",
    "market",
    "river",
    "bridge",
    "merchant",
    "winter",
    "candle",
    "archive",
    "council",
    "record",
    "orchard",
    "lantern",
]


def scan_sentences(seed: int, lines: int) -> list[str]:
    """`lines` deterministic ten-word sentences of `SCAN_WORDS`."""
    import random

    pick = random.Random(seed)
    return [" ".join(pick.choice(SCAN_WORDS) for _ in range(10)) for _ in range(lines)]


def scanned_page(lines: list[str], dpi: int = 300, point_size: float = 11.0) -> Any:
    """A US-letter page image (grayscale PIL image) with `lines` printed on it, as a scanner makes."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = int(8.5 * dpi), int(11 * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    size = round(point_size * dpi / 72)
    font = ImageFont.load_default(size=size)  # Pillow's bundled font: no system fonts needed
    for number, line in enumerate(lines):
        draw.text((dpi, dpi + number * round(size * 1.6)), line, font=font, fill=0)
    return page


def scanned_pdf(pages: list[Any], dpi: int = 300) -> bytes:
    """A PDF whose pages are the given images only (no text layer), as a scanner writes it."""
    out = io.BytesIO()
    pages = [page.copy() for page in pages]  # Pillow leaves the save's settings on appended images
    pages[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=pages[1:])
    return out.getvalue()


def image_bytes(pages: list[Any], image_format: str) -> bytes:
    """The page images saved as one file of `image_format` (TIFF keeps every page as a frame)."""
    out = io.BytesIO()
    pages = [page.copy() for page in pages]  # Pillow leaves the save's settings on appended images
    options = {"compression": "tiff_deflate"} if image_format == "TIFF" else {}  # else 8 MB a page
    if len(pages) > 1:
        pages[0].save(out, image_format, save_all=True, append_images=pages[1:], **options)
    else:
        pages[0].save(out, image_format, **options)
    return out.getvalue()


def legacy_office(modern: list[Path], folder: Path) -> dict[str, Path]:
    """.doc/.xls/.ppt files made by LibreOffice from the given .docx/.xlsx/.pptx, as Office would save
    them: legacy type -> path."""
    import subprocess

    targets = {".docx": "doc", ".xlsx": "xls", ".pptx": "ppt"}
    made: dict[str, Path] = {}
    for source in modern:
        target = targets[source.suffix]
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation=file://{folder}/profile",
                "--headless",
                "--convert-to",
                target,
                "--outdir",
                str(folder),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        made[target] = folder / f"{source.stem}.{target}"
    return made
