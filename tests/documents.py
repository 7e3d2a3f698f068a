"""Documents the integration tests make for themselves (no third-party files in the repo)."""

from __future__ import annotations

import io
import os
import struct
import zlib


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
