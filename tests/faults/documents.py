"""Documents the fault tests generate: small texts for the kill runs, hostile files for the worker."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from tests.documents import pdf_from_objects

MiB = 1024 * 1024

WORDS = [
    *("harbour", "ledger", "pump", "valve", "turbine", "river", "signal", "beacon", "archive", "survey"),
    *("glacier", "orchard", "quarry", "furnace", "compass", "lantern", "meadow", "granite", "ferry"),
    *("bridge", "tunnel", "mill", "canal", "dock", "crane", "anchor", "tide", "storm", "ridge", "valley"),
    *("forest", "copper", "timber", "railway", "station", "cargo", "engine", "boiler", "circuit", "relay"),
]


def text_document(rng: random.Random, paragraphs: int) -> bytes:
    """Plain text of `paragraphs` paragraphs of ~60 words each (about 450 characters a paragraph)."""
    out = []
    for index in range(paragraphs):
        sentences = []
        for _ in range(6):
            words = [rng.choice(WORDS) for _ in range(10)]
            sentences.append(" ".join(words).capitalize() + ".")
        out.append(f"Section {index + 1}. " + " ".join(sentences))
    return ("\n\n".join(out) + "\n").encode()


# -- hostile inputs ------------------------------------------------------------------------------


def text_pdf(text: str) -> bytes:
    stream = b"BT /F1 12 Tf 72 720 Td (" + text.encode("cp1252") + b") Tj ET"
    return pdf_from_objects(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
            4: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
            5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        }
    )


def blank_pages_pdf(pages: int, fanout: int = 50) -> bytes:
    """A PDF of `pages` blank pages, small on disk: a page tree whose nodes share their children.

    The root has `pages / fanout` kids that are all the same intermediate node, whose `fanout` kids
    are all the same empty page. Readers count 50,000 pages in a file of a few kilobytes.
    """
    assert pages % fanout == 0
    middle = b" ".join([b"4 0 R"] * fanout)
    top = b" ".join([b"3 0 R"] * (pages // fanout))
    return pdf_from_objects(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (top, pages),
            3: b"<< /Type /Pages /Parent 2 0 R /Kids [%s] /Count %d >>" % (middle, fanout),
            4: b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] >>",
        }
    )


def blank_pages_pdf_flat(pages: int) -> bytes:
    """`pages` distinct empty page objects under one node (about 60 bytes a page)."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (3 + i) for i in range(pages)), pages),
    }
    for index in range(pages):
        objects[3 + index] = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"
    return pdf_from_objects(objects)


def pixel_bomb_png(side: int) -> bytes:
    """A blank `side` x `side` 1-bit PNG: a few kilobytes on disk, side² pixels once decoded."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (side, side), 1).save(out, "PNG")
    return out.getvalue()


def corrupt_tiff() -> bytes:
    """A TIFF header and directory whose image data is missing (cut off after 64 bytes)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (640, 480), 255).save(out, "TIFF")
    return out.getvalue()[:64] + b"\x00" * 500


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'officeDocument" Target="word/document.xml"/></Relationships>'
)
DOCUMENT_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body>"
)
DOCUMENT_TAIL = b"</w:body></w:document>"
# A paragraph of one letter: the most elements per byte. One of 30,000 letters: the most bytes per
# compressed byte (deflate gets close to its ~1000:1 limit on the run).
SHORT_PARAGRAPH = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"
LONG_PARAGRAPH = b"<w:p><w:r><w:t>" + b"a" * 30_000 + b"</w:t></w:r></w:p>"


def zip_bomb_docx(path: Path, expanded: int, *, unit: bytes = LONG_PARAGRAPH) -> Path:
    """A DOCX whose word/document.xml expands to about `expanded` bytes of valid XML: `unit` (a
    paragraph) repeated, so a parser that reads it builds millions of elements.

    Written by hand so that making it takes a second, not minutes: one 8 MiB block is deflated once
    (ending on a byte boundary) and its compressed form repeated, which is a valid deflate stream
    (deflate shrinks a repeated pattern about 1000 times). ZIP64 sizes, correct CRC-32.
    """
    block = unit * (8 * MiB // len(unit))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)
    repeats = max(1, (expanded - len(DOCUMENT_HEAD) - len(DOCUMENT_TAIL)) // len(block))
    members = [
        _member("[Content_Types].xml", [CONTENT_TYPES]),
        _member("_rels/.rels", [RELS]),
        _member("word/document.xml", [DOCUMENT_HEAD, *([block] * repeats), DOCUMENT_TAIL], segment, repeats),
    ]
    with path.open("wb") as out:
        central = b""
        for name, crc, size, parts in members:
            offset = out.tell()
            compressed = sum(len(p) for p in parts)
            zip64 = struct.pack("<HHQQ", 1, 16, size, compressed)
            fixed = (45, 0, 8, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(zip64))
            out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fixed) + name + zip64)
            for part in parts:
                out.write(part)
            central += (
                struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, *fixed, 0, 0, 0, 0, offset)
                + name
                + zip64
            )
        start = out.tell()
        out.write(central)
        count = len(members)
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(central), start, 0))
    return path


def _member(
    name: str, pieces: list[bytes], segment: bytes | None = None, repeats: int = 0
) -> tuple[bytes, int, int, list[bytes]]:
    """(name, crc, expanded size, deflated parts); with `segment`, pieces[1:-1] are `repeats` copies
    of one block whose deflated form is `segment`."""
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    size = sum(len(piece) for piece in pieces)
    if segment is None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return name.encode(), crc, size, [compressor.compress(b"".join(pieces)) + compressor.flush()]

    def deflated(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

    final = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = deflated(pieces[-1])
    parts = [deflated(pieces[0]), *([segment] * repeats), tail, final.flush()]
    return name.encode(), crc, size, parts


def deeply_nested_html(depth: int, text: str) -> bytes:
    return (
        b"<!DOCTYPE html><html><head><title>deep</title></head><body>"
        + b"<div>" * depth
        + f"<p>{text}</p>".encode()
        + b"</div>" * depth
        + b"</body></html>"
    )
