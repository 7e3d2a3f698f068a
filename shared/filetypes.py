"""The document types Chute knows: short names, their media types and filename extensions."""

from __future__ import annotations

from pathlib import PurePosixPath

# short name -> canonical media type
MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "html": "text/html",
    "md": "text/markdown",
    "txt": "text/plain",
    "eml": "message/rfc822",
    "epub": "application/epub+zip",
    "odt": "application/vnd.oasis.opendocument.text",
    "rtf": "application/rtf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}

# Types whose file is a ZIP container (OOXML, EPUB, ODF): sniffed and size-checked as ZIP archives.
ZIP_TYPES = frozenset({"docx", "pptx", "xlsx", "epub", "odt"})

EXTENSIONS: dict[str, str] = {
    **{name: name for name in MEDIA_TYPES},
    "htm": "html",
    "markdown": "md",
    "text": "txt",
    "jpeg": "jpg",
    "tif": "tiff",
}

# Other names clients send for the same types.
_ALIASES: dict[str, str] = {
    "text/rtf": "rtf",
    "application/xhtml+xml": "html",
    "text/x-markdown": "md",
    "application/csv": "csv",
    "image/jpg": "jpg",
    "image/x-ms-bmp": "bmp",
}
_BY_MEDIA_TYPE: dict[str, str] = {media: name for name, media in MEDIA_TYPES.items()} | _ALIASES


def file_type_of(filename: str, content_type: str | None = None) -> str | None:
    """The short type name for an upload, from its declared media type or else its extension."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media in _BY_MEDIA_TYPE:
            return _BY_MEDIA_TYPE[media]
    suffix = PurePosixPath(filename).suffix.lower().lstrip(".")
    return EXTENSIONS.get(suffix)
