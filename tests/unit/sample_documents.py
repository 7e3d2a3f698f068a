"""Documents the extraction tests build on the fly, so no third-party files live in the repository."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from docx import Document
from docx.document import Document as DocxDocument

from shared.errors import DocumentFailed
from shared.pipeline.elements import Element
from shared.pipeline.extract import extract
from tests.documents import pdf_from_objects


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def texts_of(elements: list[Element], element_type: str | None = None) -> list[str]:
    return [element.text for element in elements if element_type in (None, element.type)]


def failure(path: Path, file_type: str) -> DocumentFailed:
    with pytest.raises(DocumentFailed) as caught:
        extract(path, file_type)
    return caught.value


def text_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one page per entry, each line of the entry drawn in Helvetica (cp1252).

    An empty entry gives a page without any text, like a scanned page.
    """
    page_count = len(pages)
    font_id, first_page_id = 3, 4
    page_ids = [first_page_id + 2 * index for index in range(page_count)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % page_id for page_id in page_ids), page_count),
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        content_id = page_id + 1
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, content_id)
        )
        stream = _text_stream(text)
        objects[content_id] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    return pdf_from_objects(objects)


def _text_stream(text: str) -> bytes:
    if not text:
        return b""
    commands = [b"BT /F1 12 Tf 72 720 Td 16 TL"]
    for line in text.split("\n"):
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        commands.append(b"(" + escaped.encode("cp1252") + b") Tj T*")
    commands.append(b"ET")
    return b"\n".join(commands)


def encrypted_pdf(pdf: bytes, *, user_password: str, owner_password: str) -> bytes:
    """`pdf` encrypted by pypdf (RC4, which pypdf implements without extra packages)."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(pdf))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def with_part_cut_in_half(package: Path, part: str) -> Path:
    """A copy of a ZIP package whose `part` ends halfway: valid ZIP, malformed XML."""
    broken = package.with_name(f"broken-{package.name}")
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, data[: len(data) // 2] if item.filename == part else data)
    return broken


def report_docx(path: Path) -> Path:
    """A Word document with a heading, paragraphs, a list, a merged and nested table, header and footer."""
    document: DocxDocument = Document()
    document.add_heading("Quarterly Report", level=1)
    document.add_paragraph("Revenue grew in every region during the quarter.")
    document.add_paragraph("Hire two engineers", style="List Bullet")
    document.add_paragraph("Open the Lisbon office", style="List Number")
    table = document.add_table(rows=3, cols=3)
    wide = table.cell(0, 0).merge(table.cell(0, 1))
    wide.text = "Merged heading cell"
    table.cell(0, 2).text = "Total"
    tall = table.cell(1, 2).merge(table.cell(2, 2))
    tall.text = "Vertically merged cell"
    table.cell(1, 0).text = "North"
    table.cell(2, 0).text = "South"
    nested = table.cell(1, 1).add_table(rows=1, cols=2)
    nested.cell(0, 0).text = "nested alpha"
    nested.cell(0, 1).text = "nested beta"
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Confidential"
    section.footer.paragraphs[0].text = "Page footer text"
    document.save(str(path))
    return path


def deck_pptx(path: Path) -> Path:
    """A presentation: a title slide, a bullet slide with notes, and a slide with a table and a group."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    title_slide = presentation.slides.add_slide(presentation.slide_layouts[0])
    title_slide.shapes.title.text = "Annual Kickoff"
    title_slide.placeholders[1].text = "Strategy for the coming year"

    bullets = presentation.slides.add_slide(presentation.slide_layouts[1])
    bullets.shapes.title.text = "Goals"
    body = bullets.placeholders[1].text_frame
    body.text = "Grow revenue"
    sub_point = body.add_paragraph()
    sub_point.text = "In new markets"
    sub_point.level = 1
    bullets.notes_slide.notes_text_frame.text = "Remember to mention the hiring budget"

    blank = presentation.slides.add_slide(presentation.slide_layouts[6])
    table = blank.shapes.add_table(3, 3, Inches(1), Inches(1), Inches(6), Inches(2)).table
    table.cell(0, 0).merge(table.cell(0, 1))
    table.cell(0, 0).text = "Merged slide heading"
    table.cell(0, 2).text = "Owner"
    table.cell(1, 0).text = "Budget"
    table.cell(1, 2).text = "Finance"
    group = blank.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(4), Inches(3), Inches(1)).text_frame.text = "Grouped remark"
    presentation.save(str(path))
    return path


def revenue_xlsx(path: Path) -> Path:
    """A workbook: 200 data rows under a header, a one-cell sheet, and an empty sheet."""
    import openpyxl

    workbook = openpyxl.Workbook()
    revenue = workbook.active
    assert revenue is not None
    revenue.title = "Revenue"
    revenue.append(["Region", "Quarter", "Amount"])
    for index in range(200):
        revenue.append([f"Region {index}", "Q1", index * 10.0])
    workbook.create_sheet("Notes").append(["Figures are unaudited"])
    workbook.create_sheet("Empty")
    workbook.save(path)
    return path


def budget_eml(path: Path) -> Path:
    """A mail with plain and HTML alternatives of its body and a text attachment."""
    message = EmailMessage()
    message["Subject"] = "Budget review"
    message["From"] = "Ana <ana@example.com>"
    message["To"] = "team@example.com"
    message["Date"] = "Fri, 16 Dec 2022 17:04:16 -0500"
    message.set_content("Hello team,\n\nThe budget review is on Monday.\n")
    message.add_alternative("<p>HTML copy of the body</p>", subtype="html")
    message.add_attachment("attachment-only words", filename="notes.txt")
    path.write_bytes(message.as_bytes())
    return path
