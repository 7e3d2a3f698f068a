"""The real documents of ../shared/corpus and what its MANIFEST.md expects of each, as it applies to this
machine. The corpus is optional: CI lays `shared/` beside the repository; where it is absent, the
corpus tests skip and say so (`ABSENT`). No other test reads anything outside the repository."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shared.pipeline.extractors.ocr import OcrOptions, ocr_unavailable

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
ABSENT = f"{CORPUS} not present: the corpus tests run where CI lays shared/ beside the repo"
# MANIFEST.md: the scanned single_table.pdf fails `no_text` "(or `indexed` where OCR is configured)".
# Where this machine has Tesseract, scans are read (CHUTE_OCR=auto, the default) and the words of its
# table must be found.
OCR_INSTALLED = ocr_unavailable(OcrOptions()) is None
SCANNED_TABLE = "single_table.pdf"
SCANNED_TABLE_WORDS = "Chipper total chunks mean chunks per document"


@dataclass(frozen=True)
class Expectation:
    filename: str
    status: str  # indexed, failed, or refused (at upload)
    code: str | None  # the error code of a failed or refused file
    find: str | None  # a query that must find the file among the first results


def read_manifest(*, ocr: bool = OCR_INSTALLED) -> list[Expectation]:
    """MANIFEST.md's rows, read as they apply to a machine with OCR (default: this one) or without."""
    rows = []
    for line in (CORPUS / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("file", "") or set(cells[0]) <= set("-:"):
            continue
        filename, expected, find = cells
        if ocr and filename == SCANNED_TABLE:
            rows.append(Expectation(filename, "indexed", None, SCANNED_TABLE_WORDS))
            continue
        status = next((word for word in ("refused", "indexed") if expected.startswith(word)), "failed")
        code = re.search(r"code `([a-z_]+)`", expected)
        query = find.strip("`") if find.startswith("`") else None
        rows.append(Expectation(filename, status, code.group(1) if code else None, query))
    return rows
