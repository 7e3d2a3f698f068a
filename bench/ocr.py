"""9. OCR: tesserocr (what Chute runs) against pytesseract, at several rendering resolutions; pages/s per
core and word accuracy on generated scans (known text) and on the corpus's scanned `single_table.pdf`.

Generated scans: US-letter pages printed at 300 dpi by Pillow (half at 11 pt, half at 8 pt small
print), wrapped in a PDF without a text layer, then rendered back by pypdfium2 at each resolution, as
Chute does. Word accuracy: of the ground truth's words (lower-cased, with repeats), the share OCR
returns. Pages per core-second divides pages by the CPU time the engine used (its own process, or the
`tesseract` processes pytesseract starts), so it does not depend on the machine's other load.
"""

from __future__ import annotations

import os
import re
import resource
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Context, Figure, Result, Table
from bench.report import grouped_bar_chart
from shared.pipeline.extractors.ocr import OcrOptions, PageReader
from tests.corpus import CORPUS
from tests.documents import scan_sentences, scanned_page, scanned_pdf

SCANNED_CORPUS_PDF = CORPUS / "single_table.pdf"
# single_table.pdf's table, typed from the page.
CORPUS_TRUTH = (
    "Processing total chunks mean chunks per document (std) tables mean (std) "
    "Base 128 64,058 800.73 (484.11) N/A Base 256 32,051 400.64 (242.04) N/A "
    "Base 512 16,046 200.58 (121.01) N/A Chipper 20,843 260.57 (145.80) 96.20 (57.53)"
)
RESOLUTIONS = (100, 150, 200, 300)
CHOSEN_DPI = OcrOptions().dpi
LINES_PER_PAGE = {11.0: 36, 8.0: 50}

Engine = Callable[[Any], str]


def run(ctx: Context) -> Result:
    result = Result("ocr", "9. OCR: tesserocr against pytesseract, by resolution", ctx.smoke)
    pages, truths = _generated(2 if ctx.smoke else 8)
    sets: dict[str, tuple[Path, list[str]]] = {"generated": (ctx.work / "scans.pdf", truths)}
    sets["generated"][0].parent.mkdir(parents=True, exist_ok=True)
    sets["generated"][0].write_bytes(scanned_pdf(pages))
    if SCANNED_CORPUS_PDF.exists():  # the corpus beside the repository, where there is one
        sets["single_table.pdf"] = (SCANNED_CORPUS_PDF, [CORPUS_TRUTH])
    resolutions = (CHOSEN_DPI,) if ctx.smoke else RESOLUTIONS
    rows: list[list[Any]] = []
    per_core: dict[str, list[float]] = {}
    with _Engines() as engines:
        for name, engine in engines.items():
            per_core[name] = []
            for dpi in resolutions:
                for label, (path, truth) in sets.items():
                    images = _rendered(path, dpi)
                    wall, cpu, texts = _timed(engine, images, child_cpu=name == "pytesseract")
                    accuracy = _word_accuracy(truth, texts)
                    rows.append(
                        [name, dpi, label, len(images), len(images) / wall, len(images) / cpu, accuracy]
                    )
                    if label == "generated":
                        per_core[name].append(len(images) / cpu)
                    if dpi == CHOSEN_DPI:
                        result.figures.append(
                            Figure(f"{name} {dpi} dpi, {label}: word accuracy", 100 * accuracy, "%")
                        )
                        if label == "generated":
                            result.figures.append(
                                Figure(
                                    f"{name} {dpi} dpi: pages per core-second", len(images) / cpu, "pages/s"
                                )
                            )
    result.tables.append(
        Table(
            ["engine", "dpi", "pages", "count", "pages/s (wall)", "pages per core-second", "word accuracy"],
            [[*row[:6], f"{100 * row[6]:.1f} %"] for row in rows],
            title="OCR of scanned pages rendered by pypdfium2, one process, one page after another",
        )
    )
    result.notes += [
        f"Chute renders scanned pages at {CHOSEN_DPI} dpi (CHUTE_OCR_DPI) and reads them with tesserocr: one "
        "Tesseract engine stays loaded for a document's pages, where pytesseract starts the `tesseract` "
        "program for each page.",
        "Generated pages: half 11 pt (36 lines), half 8 pt small print (50 lines), printed at 300 dpi.",
        f"The engines differ in version: tesserocr's wheel bundles Tesseract {_tesserocr_version()}, "
        "pytesseract runs the system's `tesseract` (Debian's). single_table.pdf is one small table "
        "scanned at about 118 dpi: its accuracy swings with the page segmentation either version picks at "
        "a given resolution (37-100 %), so it is evidence that a resolution works, not a ranking.",
        "pages/s (wall) depends on the machine's load (see above); pages per core-second does not.",
    ]
    result.plots.append(
        grouped_bar_chart(
            ctx.out / "ocr.png",
            [f"{dpi} dpi" for dpi in resolutions],
            per_core,
            title="OCR of generated scans",
            ylabel="pages per core-second",
        )
    )
    return result


def _tesserocr_version() -> str:
    import tesserocr

    return str(tesserocr.tesseract_version()).split()[1]


def _generated(count: int) -> tuple[list[Any], list[str]]:
    pages, truths = [], []
    for number in range(count):
        size = 11.0 if number % 2 == 0 else 8.0
        lines = scan_sentences(number, LINES_PER_PAGE[size])
        pages.append(scanned_page(lines, point_size=size))
        truths.append(" ".join(lines))
    return pages, truths


def _rendered(path: Path, dpi: int) -> list[Any]:
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    try:
        return [document[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(len(document))]
    finally:
        document.close()


def _timed(engine: Engine, images: list[Any], *, child_cpu: bool) -> tuple[float, float, list[str]]:
    who = resource.RUSAGE_CHILDREN if child_cpu else resource.RUSAGE_SELF
    before, started = resource.getrusage(who), time.perf_counter()
    texts = [engine(image) for image in images]
    wall, after = time.perf_counter() - started, resource.getrusage(who)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, max(cpu, 1e-6), texts


def _word_accuracy(truths: list[str], texts: list[str]) -> float:
    wanted = Counter(word for text in truths for word in _words(text))
    found = Counter(word for text in texts for word in _words(text))
    return sum((wanted & found).values()) / max(1, sum(wanted.values()))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.,/][a-z0-9]+)*", text.lower())


class _Engines:
    """The two bindings, each set up the way it is meant to be used for many pages: tesserocr as
    Chute's `PageReader` runs it, pytesseract as its documentation shows."""

    def __enter__(self) -> dict[str, Engine]:
        import pytesseract

        os.environ["OMP_THREAD_LIMIT"] = "1"  # read by the `tesseract` processes pytesseract starts
        self._reader = PageReader(OcrOptions(), total=0, report=None).__enter__()

        def with_tesserocr(image: Any) -> str:
            return "\n\n".join(element.text for element in self._reader.read(image, None))

        def with_pytesseract(image: Any) -> str:
            # One thread per page, as Tesseract advises when pages run side by side; Debian's build
            # otherwise spins OpenMP threads on every core (4-9x the CPU time for the same page).
            return str(pytesseract.image_to_string(image, lang="eng"))

        return {"tesserocr": with_tesserocr, "pytesseract": with_pytesseract}

    def __exit__(self, *exc: object) -> None:
        self._reader.__exit__()
