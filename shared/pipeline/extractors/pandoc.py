"""EPUB, OpenDocument text and RTF: pandoc (from pypandoc-binary) makes HTML for the HTML extractor.

pandoc runs with `--sandbox` (it reads no other file and nothing from the network on a document's
behalf), in the caller's process group (the isolated extraction child's, killed whole at the
document's deadline) and with a timeout of its own: `PANDOC_TIMEOUT_SECONDS`, then `timeout`.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

from shared.errors import DocumentFailed, ErrorCode
from shared.pipeline.elements import Element
from shared.pipeline.extractors import ParserReport
from shared.pipeline.extractors.html import html_elements

PANDOC_TIMEOUT_SECONDS = 300


def extract_epub(path: Path) -> list[Element]:
    return _via_pandoc(path, "epub")


def extract_odt(path: Path) -> list[Element]:
    return _via_pandoc(path, "odt")


def extract_rtf(path: Path) -> list[Element]:
    return _via_pandoc(path, "rtf")


def pandoc_program() -> str | None:
    """The pandoc that pypandoc-binary bundles, else the one on PATH; None without either. Found
    without running it (pypandoc's own lookup runs `pandoc --version`, with no timeout)."""
    spec = importlib.util.find_spec("pypandoc")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        for name in ("pandoc", "pandoc.exe"):
            bundled = Path(location) / "files" / name
            if bundled.is_file():
                return str(bundled)
    return shutil.which("pandoc")


def _via_pandoc(path: Path, source_format: str) -> list[Element]:
    program = pandoc_program()
    if program is None:
        raise DocumentFailed(
            ErrorCode.EXTRACTOR_MISSING, "pandoc is not installed (pip install pypandoc-binary)."
        )
    command = [
        program,
        f"--from={source_format}",
        "--to=html",
        "--wrap=none",
        "--sandbox",
        str(path.resolve()),
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=PANDOC_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise DocumentFailed(
            ErrorCode.TIMEOUT,
            f"pandoc took longer than {PANDOC_TIMEOUT_SECONDS} s to read the file and was stopped.",
        ) from None
    if done.returncode != 0:
        raise ParserReport(f"pandoc reports: {_pandoc_reason(done.stderr, path)}")
    return html_elements(done.stdout.decode("utf-8", "replace"))


def _pandoc_reason(stderr: bytes, path: Path) -> str:
    """Pandoc's own words, without this host's file path."""
    reason = stderr.decode("utf-8", "replace").strip()
    return reason.replace(str(path.resolve()), path.name).rstrip(".")
