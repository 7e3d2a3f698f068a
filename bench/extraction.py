"""8. PDF extraction: pypdfium2 (what Chute runs for text-layer PDFs) against pdfminer.six, the engine
of unstructured's PDF path with its `fast` strategy; pages/s and how much of the same text each finds.

unstructured's own `partition_pdf` cannot be installed here: it imports unstructured-inference, which
pulls torchvision and a CUDA build of torch. pdfminer.six's layout analysis is the work its `fast`
strategy does per page (unstructured adds element typing on top, so it can only be slower).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from pdfminer.high_level import extract_text

from bench.common import Context, Figure, Result, Table
from bench.corpus import generate
from bench.report import grouped_bar_chart
from shared.pipeline.extractors.pdf import extract_pdf
from tests.corpus import CORPUS

# Text-layer PDFs of the real corpus (password.pdf is encrypted, single_table.pdf has no text layer).
REAL_PDFS = [
    "fake-memo.pdf",
    "layout-parser-paper-fast.pdf",
    "layout-parser-paper-with-empty-pages.pdf",
    "multi-column-2p.pdf",
]


def run(ctx: Context) -> Result:
    result = Result("extraction", "8. PDF extraction: pypdfium2 against unstructured's engine", ctx.smoke)
    generated = generate(
        ctx.work / "pdfs", documents=2 if ctx.smoke else 12, max_pages=5 if ctx.smoke else 200, types=["pdf"]
    )
    sets = {"generated": [f.path for f in generated]}
    real = [CORPUS / name for name in REAL_PDFS if (CORPUS / name).exists()]
    if real:  # the corpus beside the repository (../shared/corpus), where there is one
        sets["real corpus"] = real
    extractors = {"pypdfium2": _pdfium_text, "pdfminer.six": _pdfminer_text}
    rows = []
    rates: dict[str, dict[str, float]] = {name: {} for name in extractors}
    for label, paths in sets.items():
        pages = sum(_page_count(path) for path in paths)
        texts: dict[str, list[str]] = {}
        for name, extract in extractors.items():
            started = time.perf_counter()
            texts[name] = [extract(path) for path in paths]
            rates[name][label] = pages / (time.perf_counter() - started)
        overlap = _word_overlap(texts["pdfminer.six"], texts["pypdfium2"])
        rows.append(
            [label, len(paths), pages, rates["pypdfium2"][label], rates["pdfminer.six"][label], overlap]
        )
        result.figures.append(
            Figure(
                f"{label}: pypdfium2 / pdfminer.six pages/s",
                rates["pypdfium2"][label] / rates["pdfminer.six"][label],
                "x",
            )
        )
        result.figures.append(
            Figure(f"{label}: pdfminer.six's words pypdfium2 finds too", 100 * overlap, "%")
        )
    result.tables.append(
        Table(
            ["PDFs", "files", "pages", "pypdfium2 pages/s", "pdfminer.six pages/s", "words in common"],
            [[*row[:5], f"{100 * row[5]:.1f} %"] for row in rows],
            title="Text-layer PDFs, one process, one file after another",
        )
    )
    result.notes += [
        "'Words in common': of the words pdfminer.six extracts (counted with repeats, lower-cased), the "
        "share pypdfium2 extracts too. Where they differ it is mostly hyphenation at line ends "
        "(PDFium joins the halves) and ligatures.",
        "pypdfium2 also tells an encrypted or truncated PDF from a damaged one by its error code; "
        "Chute fails those `encrypted` and `corrupt` (tests/unit, tests/faults).",
    ]
    result.plots.append(
        grouped_bar_chart(
            ctx.out / "extraction.png",
            list(sets),
            {name: [rates[name][label] for label in sets] for name in extractors},
            title="Text-layer PDF extraction",
            ylabel="pages/s",
            log=True,
        )
    )
    return result


def _pdfium_text(path: Path) -> str:
    return "\n".join(element.text for element in extract_pdf(path))


def _pdfminer_text(path: Path) -> str:
    return str(extract_text(str(path)))


def _page_count(path: Path) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    try:
        return len(document)
    finally:
        document.close()


def _word_overlap(reference: list[str], other: list[str]) -> float:
    wanted = Counter(word for text in reference for word in text.lower().split())
    found = Counter(word for text in other for word in text.lower().split())
    return sum((wanted & found).values()) / max(1, sum(wanted.values()))
