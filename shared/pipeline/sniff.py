"""Leading-bytes checks that a file is what its type says, and the text decoding that text types share."""

from __future__ import annotations

import codecs
import unicodedata
from typing import NoReturn

from shared.errors import DocumentFailed, ErrorCode
from shared.filetypes import ZIP_TYPES

# How much of a file the checks look at; callers read at most this much.
HEAD_SIZE = 8 * 1024

_PDF_MAGIC = b"%PDF-"
# Acrobat accepts the header anywhere in the first 1024 bytes; some producers prepend junk.
_PDF_HEADER_WINDOW = 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_RTF_MAGIC = b"{\\rtf"
# Images: the signatures each format's specification puts first (TIFF: little or big endian, and
# BigTIFF; WebP: a RIFF container whose form type is WEBP at offset 8).
_IMAGE_MAGICS: dict[str, tuple[bytes, ...]] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    "bmp": (b"BM",),
}

_IMAGE_TYPES = frozenset(_IMAGE_MAGICS) | {"webp"}
_OLE2_TYPES = frozenset({"doc", "xls", "ppt"})
_TEXT_TYPES = frozenset({"txt", "md", "csv", "html", "eml"})

# Longest BOMs first: the UTF-32 LE BOM begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Above this share of control characters a "text" file is binary data in disguise.
_MAX_CONTROL_SHARE = 0.05
# Tab, newlines, form feed and ESC (colour codes in logs) are normal in text files.
_ALLOWED_CONTROLS = frozenset("\t\n\r\x0b\x0c\x1b")

_TYPE_LABELS: dict[str, str] = {
    "pdf": "a PDF",
    "docx": "a ZIP-based Office document",
    "pptx": "a ZIP-based Office document",
    "xlsx": "a ZIP-based Office document",
    "epub": "an EPUB (ZIP) book",
    "odt": "an OpenDocument (ZIP) text document",
    "rtf": "an RTF document",
    "png": "a PNG image",
    "jpg": "a JPEG image",
    "tiff": "a TIFF image",
    "webp": "a WebP image",
    "bmp": "a BMP image",
    "doc": "a legacy Office (OLE2) file",
    "xls": "a legacy Office (OLE2) file",
    "ppt": "a legacy Office (OLE2) file",
}

_EPUB_MIMETYPE = b"application/epub+zip"
# The types whose ZIP starts with a `mimetype` entry, and what it must say; Office files have none.
_ZIP_MIMETYPES: dict[str, bytes] = {
    "epub": _EPUB_MIMETYPE,
    "odt": b"application/vnd.oasis.opendocument.text",
}


def decode_text(data: bytes) -> str:
    """Decode a text file's bytes: by BOM, else UTF-16 by its NUL pattern, else UTF-8, else cp1252.

    UTF-16 without a BOM is tried before UTF-8 because ASCII text in UTF-16 is also valid UTF-8 (with
    a NUL after every letter); real UTF-8 text never has that pattern. Never fails: latin-1 maps
    every byte.
    """
    return _decode(data, final=True)


def check_leading_bytes(head: bytes, file_type: str) -> None:
    """Raise `DocumentFailed(ErrorCode.TYPE_MISMATCH)` when a file's first bytes do not fit its declared type.

    `head` is the first up to `HEAD_SIZE` bytes. An encrypted Office file (an OLE2 container holding
    an `EncryptedPackage`) raises `encrypted` instead, since that is what the person must fix.
    """
    head = head[:HEAD_SIZE]
    if file_type == "pdf":
        if _PDF_MAGIC not in head[:_PDF_HEADER_WINDOW]:
            _mismatch(head, file_type)
    elif file_type in ZIP_TYPES:
        _check_zip_container(head, file_type)
    elif file_type == "rtf":
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(_RTF_MAGIC):
            _mismatch(head, file_type)
    elif file_type in _TEXT_TYPES:
        _check_text(head, file_type)
    elif file_type in _IMAGE_TYPES and _image_kind(head) != file_type:
        _mismatch(head, file_type)
    elif file_type in _OLE2_TYPES and not head.startswith(_OLE2_MAGIC):
        # Which of the three it is shows in the container's directory, read by the extractor.
        _mismatch(head, file_type)


def _image_kind(head: bytes) -> str | None:
    """The image format the head starts with, by its signature."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    for kind, magics in _IMAGE_MAGICS.items():
        if head.startswith(magics):
            return kind
    return None


def _check_zip_container(head: bytes, file_type: str) -> None:
    if head.startswith(_OLE2_MAGIC) and "EncryptedPackage".encode("utf-16-le") in head:
        raise DocumentFailed(
            ErrorCode.ENCRYPTED,
            f"The .{file_type} file is password-protected. Remove the password and upload it again.",
        )
    if not head.startswith(_ZIP_MAGIC):
        _mismatch(head, file_type)
    # EPUB and OpenDocument put an uncompressed `mimetype` entry first, so it is visible here.
    declared = _zip_mimetype(head)
    if declared is not None and declared != _ZIP_MIMETYPES.get(file_type):
        _mismatch(head, file_type)


def _check_text(head: bytes, file_type: str) -> None:
    if _known_binary_kind(head) is not None or _looks_binary(head):
        _mismatch(head, file_type)


def _looks_binary(head: bytes) -> bool:
    """NUL bytes that no UTF-16/32 encoding explains, or too many control characters once decoded."""
    if b"\x00" in head and _bom_encoding(head) is None and _utf16_by_nul_pattern(head) is None:
        return True
    return _control_share(_decode(head, final=False)) > _MAX_CONTROL_SHARE


def _mismatch(head: bytes, file_type: str) -> NoReturn:
    expected = _TYPE_LABELS.get(file_type, "text")
    message = (
        f"The file is named .{file_type} but its bytes are not {expected} ({_describe(head)}). "
        "Check that the right file was uploaded, or rename it to match its content."
    )
    raise DocumentFailed(ErrorCode.TYPE_MISMATCH, message)


def _describe(head: bytes) -> str:
    kind = _known_binary_kind(head)
    if kind is not None:
        return f"it looks like {kind}"
    if not head:
        return "the file is empty"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(_RTF_MAGIC):
        return "it looks like an RTF document"
    if _looks_binary(head):
        return "it looks like binary data"
    text = _decode(head, final=False)
    if "<html" in text[:2048].lower() or "<!doctype html" in text[:2048].lower():
        return "it looks like HTML text"
    return "it looks like plain text"


def _known_binary_kind(head: bytes) -> str | None:
    """What the head starts with, for formats whose magic bytes cannot begin a text file by chance."""
    # Only at the very start: a text file may well mention "%PDF-" in its first lines.
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(_PDF_MAGIC):
        return "a PDF"
    if head.startswith(_ZIP_MAGIC):
        mimetype = _zip_mimetype(head)
        if mimetype == _EPUB_MIMETYPE:
            return "an EPUB book"
        if mimetype is not None and mimetype.startswith(b"application/vnd.oasis.opendocument"):
            return "an OpenDocument file"
        return "a ZIP archive (such as .docx, .pptx or .xlsx)"
    if head.startswith(_OLE2_MAGIC):
        return "a legacy Office file (.doc, .xls, .ppt) or a password-protected Office document"
    signatures: tuple[tuple[bytes, str], ...] = (
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (b"GIF87a", "a GIF image"),
        (b"GIF89a", "a GIF image"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!\x1a\x07", "a RAR archive"),
        (b"\x7fELF", "a program (ELF executable)"),
    )
    for magic, kind in signatures:
        if head.startswith(magic):
            return kind
    return None


def _zip_mimetype(head: bytes) -> bytes | None:
    """The content of a leading stored `mimetype` entry (EPUB, OpenDocument), if the ZIP starts with one."""
    if not head.startswith(_ZIP_MAGIC) or len(head) < 30:
        return None
    name_length = int.from_bytes(head[26:28], "little")
    extra_length = int.from_bytes(head[28:30], "little")
    if head[30 : 30 + name_length] != b"mimetype":
        return None
    size = int.from_bytes(head[18:22], "little")
    start = 30 + name_length + extra_length
    return head[start : start + min(size, 100)].strip()


def _decode(data: bytes, *, final: bool) -> str:
    """Decode as `decode_text` does; with final=False a character cut at the end is not an error."""
    encoding = _bom_encoding(data) or _utf16_by_nul_pattern(data)
    if encoding is not None:
        decoded = _try_decode(data, encoding, final=final)
        if decoded is not None:
            return decoded
    decoded = _try_decode(data, "utf-8", final=final)
    if decoded is not None:
        return decoded
    decoded = _try_decode(data, "cp1252", final=final)
    if decoded is not None:
        return decoded
    return data.decode("latin-1")


def _try_decode(data: bytes, encoding: str, *, final: bool) -> str | None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return str(decoder.decode(data, final=final))
    except UnicodeDecodeError:
        return None


def _bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _utf16_by_nul_pattern(data: bytes) -> str | None:
    """UTF-16 LE/BE when one byte of most pairs is NUL and the other almost never is (Latin text)."""
    sample = data[:4096]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    nul_even = sample[0 : pairs * 2 : 2].count(0)
    nul_odd = sample[1 : pairs * 2 : 2].count(0)
    if nul_odd >= 0.4 * pairs and nul_even <= 0.02 * pairs:
        return "utf-16-le"
    if nul_even >= 0.4 * pairs and nul_odd <= 0.02 * pairs:
        return "utf-16-be"
    return None


def _control_share(text: str) -> float:
    if not text:
        return 0.0
    controls = sum(1 for char in text if char not in _ALLOWED_CONTROLS and unicodedata.category(char) == "Cc")
    return controls / len(text)
