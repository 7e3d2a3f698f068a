"""The extraction stage on documents built in the test: text found, types and pages right, failures coded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from shared.filetypes import MEDIA_TYPES
from shared.pipeline.elements import Element
from shared.pipeline.extract import extract, missing_extractor
from shared.pipeline.extractors import TABLE_BLOCK_CHARS
from shared.pipeline.extractors.ocr import OcrOptions
from tests.unit.sample_documents import (
    budget_eml,
    deck_pptx,
    encrypted_pdf,
    failure,
    report_docx,
    revenue_xlsx,
    text_pdf,
    texts_of,
    with_part_cut_in_half,
    write,
)

REPO = Path(__file__).resolve().parents[2]


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_text_per_page_skipping_empty_pages(tmp_path: Path) -> None:
    pdf = write(
        tmp_path, "a.pdf", text_pdf(["Invoice for März\nTotal due: 120 EUR", "", "Thank you (really)"])
    )
    elements = extract(pdf, "pdf")
    assert [element.page for element in elements] == [1, 3]
    assert "Invoice for März" in elements[0].text
    assert "Total due: 120 EUR" in elements[0].text
    assert elements[1].text == "Thank you (really)"


def test_pdf_without_text_or_images_is_no_text(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "blank.pdf", text_pdf(["", ""])), "pdf")
    assert error.code == "no_text"
    assert "pages hold no text (and no scanned images)" in error.message


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    whole = text_pdf(["A page that will be cut off"])
    error = failure(write(tmp_path, "cut.pdf", whole[: len(whole) // 2]), "pdf")
    assert error.code == "corrupt"
    assert "cut off" in error.message


def test_pdf_with_broken_structure_is_corrupt(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "junk.pdf", b"%PDF-1.7\nnot really a pdf at all\n%%EOF\n"), "pdf")
    assert error.code == "corrupt"
    assert error.message.startswith("The PDF could not be read")


def test_pdf_needing_a_user_password_is_encrypted(tmp_path: Path) -> None:
    locked = encrypted_pdf(text_pdf(["Secret plans"]), user_password="open-sesame", owner_password="owner")
    error = failure(write(tmp_path, "locked.pdf", locked), "pdf")
    assert error.code == "encrypted"
    assert "password" in error.message


def test_pdf_with_only_an_owner_password_extracts(tmp_path: Path) -> None:
    restricted = encrypted_pdf(
        text_pdf(["Printable but restricted"]), user_password="", owner_password="owner"
    )
    elements = extract(write(tmp_path, "restricted.pdf", restricted), "pdf")
    assert texts_of(elements) == ["Printable but restricted"]


# --- Office ------------------------------------------------------------------------------------


def test_docx_headings_lists_tables_headers_and_footers(tmp_path: Path) -> None:
    elements = extract(report_docx(tmp_path / "report.docx"), "docx")
    assert Element("Quarterly Report", "Title") in elements
    assert Element("Revenue grew in every region during the quarter.", "NarrativeText") in elements
    assert texts_of(elements, "ListItem") == ["Hire two engineers", "Open the Lisbon office"]
    assert texts_of(elements, "Header") == ["ACME Confidential"]
    assert texts_of(elements, "Footer") == ["Page footer text"]
    assert elements[0].type == "Header" and elements[-1].type == "Footer"
    [table] = texts_of(elements, "Table")
    assert table.count("Merged heading cell") == 1
    assert table.count("Vertically merged cell") == 1
    assert "nested alpha | nested beta" in table
    assert table.splitlines()[0] == "Merged heading cell | Total"
    assert all(element.page is None for element in elements)


def test_office_files_that_are_no_package_are_corrupt(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "broken.docx", b"PK\x03\x04" + b"\x00garbage" * 50), "docx")
    assert error.code == "corrupt"
    assert "ZIP" in error.message
    other_zip = tmp_path / "other.xlsx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    assert failure(other_zip, "xlsx").code == "corrupt"


def test_docx_with_malformed_xml_is_corrupt(tmp_path: Path) -> None:
    broken = with_part_cut_in_half(report_docx(tmp_path / "good.docx"), "word/document.xml")
    error = failure(broken, "docx")
    assert error.code == "corrupt"
    assert error.message.startswith("The Word document could not be read")


def test_pptx_titles_bullets_tables_and_notes_by_slide(tmp_path: Path) -> None:
    elements = extract(deck_pptx(tmp_path / "deck.pptx"), "pptx")
    assert Element("Annual Kickoff", "Title", 1) in elements
    assert Element("Strategy for the coming year", "NarrativeText", 1) in elements
    assert Element("Goals", "Title", 2) in elements
    assert Element("Grow revenue", "ListItem", 2) in elements
    assert Element("In new markets", "ListItem", 2) in elements
    assert Element("Remember to mention the hiring budget", "NarrativeText", 2) in elements
    [table] = [element for element in elements if element.type == "Table"]
    assert table.page == 3
    assert table.text.count("Merged slide heading") == 1
    assert "Budget |  | Finance" in table.text
    assert Element("Grouped remark", "NarrativeText", 3) in elements


def test_xlsx_sheets_are_pages_and_blocks_repeat_the_header(tmp_path: Path) -> None:
    elements = extract(revenue_xlsx(tmp_path / "book.xlsx"), "xlsx")
    assert elements[0] == Element("Revenue", "Title", 1)
    revenue_blocks = [e for e in elements if e.type == "Table" and e.page == 1]
    assert len(revenue_blocks) > 1
    assert all(block.text.startswith("Region | Quarter | Amount\n") for block in revenue_blocks)
    assert all(len(block.text) <= TABLE_BLOCK_CHARS + 100 for block in revenue_blocks)
    assert "Region 199 | Q1 | 1990" in revenue_blocks[-1].text
    assert Element("Figures are unaudited", "Table", 2) in elements
    assert not [e for e in elements if e.page == 3]


# --- Text formats ------------------------------------------------------------------------------


def test_csv_rows_with_header_kept_in_every_block(tmp_path: Path) -> None:
    rows = ["Name;Stadt"] + [f"Müller {index};Köln" for index in range(150)]
    path = write(tmp_path, "people.csv", ("\r\n".join(rows) + "\r\n").encode("cp1252"))
    elements = extract(path, "csv")
    assert len(elements) > 1
    assert all(element.type == "Table" and element.page is None for element in elements)
    assert all(element.text.startswith("Name | Stadt\n") for element in elements)
    assert "Müller 0 | Köln" in elements[0].text
    assert "Müller 149 | Köln" in elements[-1].text


def test_html_structure_and_dropped_scripts(tmp_path: Path) -> None:
    page = """<!DOCTYPE html><html><head><title>Ignored title</title><style>p {color: red}</style>
    <script>var hidden = "script words";</script></head><body>
    <noscript>Enable JavaScript</noscript>
    <h1>Release notes</h1>
    <p>Version <b>2.0</b> is out &amp; it is
       faster.</p>
    <ul><li>New importer<ul><li>Nested point</li></ul></li><li>Bug fixes</li></ul>
    <pre>def main():
    return 0</pre>
    <table><tr><th>Name</th><th>Value</th></tr>
      <tr><td>alpha</td><td><table><tr><td>inner</td></tr></table></td></tr></table>
    <div>Loose text in a div<br>on two lines</div>
    <!-- a comment that is not text -->
    </body></html>"""
    elements = extract(write(tmp_path, "page.html", page), "html")
    all_text = "\n".join(texts_of(elements))
    for absent in ("script words", "color: red", "Enable JavaScript", "Ignored title", "a comment"):
        assert absent not in all_text
    assert Element("Release notes", "Title") in elements
    assert Element("Version 2.0 is out & it is faster.", "NarrativeText") in elements
    assert texts_of(elements, "ListItem") == ["New importer", "Nested point", "Bug fixes"]
    assert Element("def main():\n    return 0", "CodeSnippet") in elements
    assert Element("Name | Value\nalpha | inner", "Table") in elements
    assert Element("Loose text in a div\non two lines", "Text") in elements


def test_html_nested_100000_deep_extracts_without_recursion(tmp_path: Path) -> None:
    depth = 100_000
    page = "<html><body>" + "<div>" * depth + "<p>Deep down text</p>" + "</div>" * depth + "</body></html>"
    elements = extract(write(tmp_path, "deep.html", page), "html")
    assert texts_of(elements) == ["Deep down text"]


def test_html_declared_charset_is_honoured(tmp_path: Path) -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><p>Café “Zürich”</p></body></html>'
    elements = extract(write(tmp_path, "legacy.html", page.encode("cp1252")), "html")
    assert texts_of(elements) == ["Café “Zürich”"]


def test_markdown_blocks_and_umlauts(tmp_path: Path) -> None:
    document = (
        "# Überschrift\n\n"
        "Wir können **das** mit [Links](https://example.com) machen.\n"
        "Zweite Zeile.\n\n"
        "- erster Punkt\n"
        "- zweiter Punkt\n"
        "  fortgesetzt\n\n"
        "```python\n"
        "print('kein Titel')\n"
        "# kein Titel\n"
        "```\n\n"
        "Setext Titel\n"
        "============\n\n"
        "| Spalte | Wert |\n"
        "|--------|------|\n"
        "| a      | 1    |\n"
    )
    elements = extract(write(tmp_path, "notes.md", document), "md")
    assert elements == [
        Element("Überschrift", "Title"),
        Element("Wir können das mit Links machen. Zweite Zeile.", "NarrativeText"),
        Element("erster Punkt", "ListItem"),
        Element("zweiter Punkt fortgesetzt", "ListItem"),
        Element("print('kein Titel')\n# kein Titel", "CodeSnippet"),
        Element("Setext Titel", "Title"),
        Element("Spalte | Wert\na | 1", "Table"),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "utf-16-le"])
def test_txt_in_common_encodings(tmp_path: Path, encoding: str) -> None:
    text = "Grüße aus Köln\n\nDer zweite Absatz erklärt mehr über die Stadt.\n"
    elements = extract(write(tmp_path, "note.txt", text.encode(encoding)), "txt")
    assert elements == [
        Element("Grüße aus Köln", "Title"),
        Element("Der zweite Absatz erklärt mehr über die Stadt.", "NarrativeText"),
    ]


def test_txt_bullets_become_list_items(tmp_path: Path) -> None:
    text = "Shopping:\n\n- bread\n- milk\n\n1. first\n2. second\n"
    elements = extract(write(tmp_path, "list.txt", text), "txt")
    assert texts_of(elements, "ListItem") == ["- bread", "- milk", "1. first", "2. second"]


def test_whitespace_only_txt_is_no_text(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "blank.txt", " \n\t\n   \r\n"), "txt")
    assert error.code == "no_text"
    assert error.message.startswith("No text could be extracted")


def test_texts_are_stripped_nul_free_and_never_empty(tmp_path: Path) -> None:
    # NUL cannot be stored in Postgres text; a mail header can carry one (=00 in an encoded word).
    mail = b"Subject: =?utf-8?q?Before=00after?=\nContent-Type: text/plain\n\n  \n  Body  \n"
    elements = extract(write(tmp_path, "nul.eml", mail), "eml")
    assert texts_of(elements) == ["Subject: Beforeafter", "Body"]


# --- Email -------------------------------------------------------------------------------------


def test_eml_headers_plain_body_and_no_attachments(tmp_path: Path) -> None:
    elements = extract(budget_eml(tmp_path / "mail.eml"), "eml")
    assert texts_of(elements, "EmailHeader") == [
        "Subject: Budget review",
        "From: Ana <ana@example.com>",
        "To: team@example.com",
        "Date: Fri, 16 Dec 2022 17:04:16 -0500",
    ]
    body = texts_of(elements, "NarrativeText")
    assert "The budget review is on Monday." in body
    all_text = "\n".join(texts_of(elements))
    assert "HTML copy" not in all_text
    assert "attachment-only" not in all_text


def test_eml_with_only_html_body(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Newsletter"
    message.set_content("<h2>Top story</h2><p>Prices fell sharply.</p>", subtype="html")
    elements = extract(write(tmp_path, "news.eml", message.as_bytes()), "eml")
    assert Element("Top story", "Title") in elements
    assert Element("Prices fell sharply.", "NarrativeText") in elements


# --- Pandoc formats ----------------------------------------------------------------------------


def test_rtf_through_pandoc(tmp_path: Path) -> None:
    rtf = r"{\rtf1\ansi\deff0 {\pard \b \fs36 Travel policy\par}{\pard Book flights early.\par}}"
    elements = extract(write(tmp_path, "policy.rtf", rtf), "rtf")
    assert "Travel policy" in texts_of(elements)
    assert "Book flights early." in texts_of(elements)


def test_broken_epub_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "broken.epub"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
    error = failure(path, "epub")
    assert error.code == "corrupt"
    assert error.message.startswith("The EPUB book could not be read: pandoc reports: ")


# --- The stage itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "outcome"),
    [
        (ValueError("unexpected token at offset 12"), "corrupt"),
        # Running out of memory says nothing about the document: it must not be filed as corrupt.
        (MemoryError(), "MemoryError"),
    ],
)
def test_library_errors_inside_a_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: Exception, outcome: str
) -> None:
    from shared.pipeline.extractors import text

    def parser_that_fails(path: Path) -> list[Element]:
        raise raised

    monkeypatch.setattr(text, "extract_txt", parser_that_fails)
    path = write(tmp_path, "x.txt", "text")
    if outcome == "MemoryError":
        with pytest.raises(MemoryError):
            extract(path, "txt")
        return
    error = failure(path, "txt")
    assert (error.code, error.message) == (
        "corrupt",
        "The text file could not be read: ValueError: unexpected token at offset 12.",
    )


def test_renamed_and_binary_files_are_a_type_mismatch(tmp_path: Path) -> None:
    pdf_named_docx = failure(write(tmp_path, "a.docx", text_pdf(["Hello"])), "docx")
    assert pdf_named_docx.code == "type_mismatch"
    assert "(it looks like a PDF)" in pdf_named_docx.message
    assert failure(write(tmp_path, "noise.txt", bytes(range(256)) * 8), "txt").code == "type_mismatch"


def test_every_known_type_has_an_installed_extractor_and_others_are_refused(tmp_path: Path) -> None:
    installed = [missing_extractor(file_type, OcrOptions()) for file_type in MEDIA_TYPES]
    assert installed == [None] * len(MEDIA_TYPES)
    assert missing_extractor("bin") == "Chute has no extractor for the file type 'bin'."
    assert failure(write(tmp_path, "x.bin", b"data"), "bin").code == "unsupported_type"


def test_missing_library_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_find_spec = importlib.util.find_spec

    def without_pptx(name: str, package: str | None = None) -> object:
        return None if name == "pptx" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_pptx)
    message = "pptx extraction needs the python-pptx package, which is not installed."
    assert missing_extractor("pptx") == message
    error = failure(write(tmp_path, "deck.pptx", b"PK\x03\x04"), "pptx")
    assert (error.code, error.message) == ("extractor_missing", message)


def test_importing_the_stage_loads_no_heavy_library() -> None:
    probe = (
        "import sys\n"
        "from shared.pipeline.extract import missing_extractor\n"
        "from shared.filetypes import MEDIA_TYPES\n"
        "[missing_extractor(t) for t in MEDIA_TYPES]\n"
        "heavy = {'docx', 'pptx', 'openpyxl', 'pypdfium2', 'bs4', 'lxml', 'pypandoc', 'unstructured'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["[]"]
