"""Every real document in ../shared/corpus through sniff and extract, ending as MANIFEST.md states."""

from __future__ import annotations

import pytest

from shared.errors import DocumentFailed
from shared.filetypes import file_type_of
from shared.pipeline.extract import extract
from shared.pipeline.extractors.ocr import OcrOptions
from shared.pipeline.sniff import HEAD_SIZE, check_leading_bytes
from tests.corpus import ABSENT, CORPUS, OCR_INSTALLED, read_manifest

if not CORPUS.is_dir():
    pytest.skip(ABSENT, allow_module_level=True)

# Refused at upload (empty_file) before any extraction; nothing to extract here.
NOT_EXTRACTED = {"empty.txt"}
OCR = OcrOptions() if OCR_INSTALLED else None
# At least this share of a "find" query's words must be in the text (a few may be inflected).
MIN_FOUND_SHARE = 0.75


MANIFEST = {item.filename: item for item in read_manifest()}


def test_manifest_lists_every_corpus_file() -> None:
    on_disk = {path.name for path in CORPUS.iterdir() if path.name != "MANIFEST.md"}
    assert on_disk == set(MANIFEST)


@pytest.mark.parametrize("name", sorted(set(MANIFEST) - NOT_EXTRACTED))
def test_corpus_document(name: str) -> None:
    path = CORPUS / name
    file_type = file_type_of(name)
    assert file_type is not None
    expected = MANIFEST[name]
    check_leading_bytes(path.read_bytes()[:HEAD_SIZE], file_type)
    if expected.code is not None:
        with pytest.raises(DocumentFailed) as caught:
            extract(path, file_type, OCR)
        assert caught.value.code == expected.code
        assert caught.value.message.endswith(".")
        return
    assert expected.status == "indexed"
    elements = extract(path, file_type, OCR)
    text = "\n".join(element.text for element in elements).lower()
    words = (expected.find or "").lower().split()
    missing = [word for word in words if word not in text]
    assert len(words) - len(missing) >= MIN_FOUND_SHARE * len(words), f"missing {missing}"
    assert all(element.text == element.text.strip() and element.text for element in elements)


def test_umlauts_stay_intact() -> None:
    elements = extract(CORPUS / "umlauts-utf8.md", "md")
    assert "können" in [element.text for element in elements]
    assert "kÃ¶nnen" not in "\n".join(element.text for element in elements)


def test_utf16_text_is_decoded() -> None:
    elements = extract(CORPUS / "fake-text-utf-16.txt", "txt")
    assert elements[0].text == "This is a test document to use for unit tests."
    assert not any("\x00" in element.text for element in elements)


def test_empty_pages_are_skipped() -> None:
    elements = extract(CORPUS / "layout-parser-paper-with-empty-pages.pdf", "pdf")
    assert [element.page for element in elements] == [1, 4]


def test_scanned_pdf_without_ocr_says_why_and_how_to_turn_it_on() -> None:
    with pytest.raises(DocumentFailed) as caught:
        extract(CORPUS / "single_table.pdf", "pdf", OcrOptions(enabled=False))
    assert caught.value.code == "no_text"
    assert "the PDF is scanned" in caught.value.message
    assert "CHUTE_OCR=auto" in caught.value.message
