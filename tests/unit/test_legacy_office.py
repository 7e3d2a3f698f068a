"""Legacy Office files (.doc, .xls, .ppt) made by LibreOffice from the modern samples: converted in the
isolated child and read like their modern originals; impostors and damage end with codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.errors import DocumentFailed
from shared.pipeline.elements import elements_from_data
from shared.pipeline.extract import extract, extract_data, missing_extractor
from shared.pipeline.isolation import run_isolated
from tests.documents import legacy_office
from tests.unit.sample_documents import deck_pptx, report_docx, revenue_xlsx, write

MODERN = {"doc": "docx", "xls": "xlsx", "ppt": "pptx"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("legacy")
    modern = [
        report_docx(folder / "report.docx"),
        revenue_xlsx(folder / "revenue.xlsx"),
        deck_pptx(folder / "deck.pptx"),
    ]
    return {**legacy_office(modern, folder), **{path.suffix[1:]: path for path in modern}}


@pytest.mark.parametrize("file_type", ["doc", "xls", "ppt"])
def test_legacy_file_reads_as_its_modern_original(files: dict[str, Path], file_type: str) -> None:
    original = extract(files[MODERN[file_type]], MODERN[file_type])

    converted = run_isolated(
        extract_data,
        str(files[file_type]),
        file_type,
        None,
        memory_limit=2 * 1024**3,
        timeout=120,
        what="Extracting the text",
        decode=elements_from_data,
    )

    assert [element.text for element in converted] == [element.text for element in original]
    assert [element.page for element in converted] == [element.page for element in original]


def test_a_workbook_named_doc_is_a_mismatch_that_says_what_it_is(
    files: dict[str, Path], tmp_path: Path
) -> None:
    renamed = write(tmp_path, "budget.doc", files["xls"].read_bytes())
    with pytest.raises(DocumentFailed) as caught:
        extract(renamed, "doc")
    assert caught.value.code == "type_mismatch"
    assert "it is an Excel workbook (.xls). Rename it to .xls" in caught.value.message


def test_a_docx_named_doc_is_a_mismatch(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DocumentFailed) as caught:
        extract(write(tmp_path, "report.doc", files["docx"].read_bytes()), "doc")
    assert caught.value.code == "type_mismatch"
    assert "ZIP archive" in caught.value.message


def test_a_damaged_doc_is_corrupt(files: dict[str, Path], tmp_path: Path) -> None:
    whole = files["doc"].read_bytes()
    with pytest.raises(DocumentFailed) as caught:
        extract(write(tmp_path, "cut.doc", whole[:1536]), "doc")
    assert caught.value.code == "corrupt"
    assert caught.value.message.startswith("The Word document (.doc) could not be read")


def test_without_libreoffice_the_packages_to_install_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_extractor("ppt") is None
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "soffice" else real_which(name)
    )
    missing = missing_extractor("xls")
    assert (
        missing is not None and "apt-get install libreoffice-writer-nogui libreoffice-calc-nogui" in missing
    )
