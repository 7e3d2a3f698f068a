"""EPUB, OpenDocument text and RTF: pandoc (from pypandoc-binary) makes HTML for the HTML extractor."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from shared.pipeline.elements import Element
from shared.pipeline.extractors import ParserReport
from shared.pipeline.extractors.html import html_elements

_PYPANDOC_PREAMBLE = re.compile(r'^Pandoc died with exitcode "\d+" during conversion:\s*')


def extract_epub(path: Path) -> list[Element]:
    return _via_pandoc(path, "epub")


def extract_odt(path: Path) -> list[Element]:
    return _via_pandoc(path, "odt")


def extract_rtf(path: Path) -> list[Element]:
    return _via_pandoc(path, "rtf")


def _via_pandoc(path: Path, source_format: str) -> list[Element]:
    import pypandoc

    # pypandoc expands glob patterns in the path: escape them so a name with [ or * is taken as is.
    # The sandbox keeps pandoc from reading other files or the network on a document's behalf.
    try:
        html = pypandoc.convert_file(
            Path(glob.escape(str(path.resolve()))),
            "html",
            format=source_format,
            extra_args=["--wrap=none"],
            sandbox=True,
        )
    except RuntimeError as exc:
        raise ParserReport(f"pandoc reports: {_pandoc_reason(str(exc), path)}") from exc
    return html_elements(html)


def _pandoc_reason(error: str, path: Path) -> str:
    """Pandoc's own words, without pypandoc's preamble or this host's file path."""
    reason = _PYPANDOC_PREAMBLE.sub("", error.strip())
    return reason.replace(str(path.resolve()), path.name).rstrip(".")
