"""Leading-bytes checks and text decoding, on bytes built in the test."""

from __future__ import annotations

import codecs
import io
import random
import zipfile
from pathlib import Path

import pytest

from shared.errors import DocumentFailed
from shared.pipeline.sniff import HEAD_SIZE, check_leading_bytes, decode_text
from tests.unit.sample_documents import report_docx, text_pdf

GREETING = "Grüße aus Köln, 5 € pro Stück!"


def mismatch(head: bytes, file_type: str) -> str:
    with pytest.raises(DocumentFailed) as caught:
        check_leading_bytes(head, file_type)
    assert caught.value.code == "type_mismatch"
    return caught.value.message


def zip_bytes(entries: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in entries.items():
            compression = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=compression)
    return out.getvalue()


# --- decode_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding",
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be", "cp1252"],
)
def test_decode_text_recognises_common_encodings(encoding: str) -> None:
    text = f"{GREETING}\nA second line of plain words." if "16" in encoding else GREETING
    data = text.encode(encoding)
    if encoding == "utf-32-be":
        data = codecs.BOM_UTF32_BE + data
    assert decode_text(data) == text


def test_decode_text_falls_back_to_latin_1_for_bytes_cp1252_lacks() -> None:
    assert decode_text(b"caf\xe9 \x81") == "café \x81"


def test_decode_text_leaves_no_bom_behind() -> None:
    assert decode_text(codecs.BOM_UTF8 + b"plain") == "plain"
    assert decode_text(b"") == ""


# --- binary types --------------------------------------------------------------------------------


def test_pdf_passes_even_after_leading_junk() -> None:
    check_leading_bytes(text_pdf(["hello"])[:HEAD_SIZE], "pdf")
    check_leading_bytes(b"\r\n\xef\xbb\xbf%PDF-1.7\n", "pdf")


def test_pdf_named_docx_is_a_mismatch_that_says_so() -> None:
    message = mismatch(text_pdf(["hello"]), "docx")
    assert message.startswith(
        "The file is named .docx but its bytes are not a ZIP-based Office document (it looks like a PDF)."
    )


def test_docx_named_pdf_is_a_mismatch(tmp_path: Path) -> None:
    head = report_docx(tmp_path / "r.docx").read_bytes()[:HEAD_SIZE]
    check_leading_bytes(head, "docx")
    assert "(it looks like a ZIP archive" in mismatch(head, "pdf")


def test_empty_file_is_described() -> None:
    assert "(the file is empty)" in mismatch(b"", "pdf")


def test_epub_and_odt_are_told_apart_by_their_mimetype_entry() -> None:
    epub = zip_bytes({"mimetype": "application/epub+zip", "content.opf": "<package/>"})
    odt = zip_bytes({"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": "<x/>"})
    check_leading_bytes(epub, "epub")
    check_leading_bytes(odt, "odt")
    assert "it looks like an OpenDocument file" in mismatch(odt, "epub")
    assert "it looks like an EPUB book" in mismatch(epub, "docx")
    spreadsheet = zip_bytes({"mimetype": "application/vnd.oasis.opendocument.spreadsheet"})
    mismatch(spreadsheet, "odt")


def test_password_protected_office_file_is_encrypted_not_a_mismatch() -> None:
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500 + "EncryptedPackage".encode("utf-16-le")
    with pytest.raises(DocumentFailed) as caught:
        check_leading_bytes(ole2, "xlsx")
    assert caught.value.code == "encrypted"
    legacy_doc = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500
    assert "legacy Office file" in mismatch(legacy_doc, "docx")


def test_rtf() -> None:
    check_leading_bytes(rb"{\rtf1\ansi Hello}", "rtf")
    assert "it looks like plain text" in mismatch(b"Hello, not rtf", "rtf")


# --- text types ----------------------------------------------------------------------------------


@pytest.mark.parametrize("file_type", ["txt", "md", "csv", "html", "eml"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-32", "cp1252"])
def test_text_in_any_usual_encoding_passes(file_type: str, encoding: str) -> None:
    check_leading_bytes(f"{GREETING}\nMore text on a second line.\n".encode(encoding), file_type)


def test_binary_bytes_named_txt_are_a_mismatch() -> None:
    noise = random.Random(7).randbytes(4096)
    message = mismatch(noise, "txt")
    assert message.startswith(
        "The file is named .txt but its bytes are not text (it looks like binary data)."
    )


def test_control_characters_without_nul_are_a_mismatch() -> None:
    mismatch(bytes(range(1, 32)) * 20 + b"some letters", "csv")


def test_known_binary_formats_named_as_text_are_a_mismatch() -> None:
    assert "(it looks like a PDF)" in mismatch(text_pdf(["all ascii"]), "txt")
    assert "(it looks like a PNG image)" in mismatch(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "html")


def test_a_character_cut_at_the_end_of_the_head_is_not_binary() -> None:
    text = ("ö" * HEAD_SIZE).encode("utf-8")
    check_leading_bytes(text[: HEAD_SIZE - 1], "txt")
    check_leading_bytes(text, "md")


def test_text_with_escape_codes_and_form_feeds_passes() -> None:
    check_leading_bytes(b"\x1b[31mred log line\x1b[0m\n\x0cnext page\n" * 50, "txt")


def test_text_that_mentions_magic_bytes_is_still_text() -> None:
    check_leading_bytes(b"# PDF internals\n\nEvery file starts with `%PDF-1.7`.\n", "md")
    check_leading_bytes(b"MZ is the country code of Mozambique.\n", "txt")


IMAGE_HEADS = {
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "tiff": b"II*\x00\x08\x00\x00\x00",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "bmp": b"BM\x36\x00\x0c\x00\x00\x00",
}


@pytest.mark.parametrize("file_type", sorted(IMAGE_HEADS))
def test_images_are_told_apart_by_their_signatures(file_type: str) -> None:
    check_leading_bytes(IMAGE_HEADS[file_type], file_type)
    for other, head in IMAGE_HEADS.items():
        if other != file_type:
            assert "Check that the right file was uploaded" in mismatch(head, file_type)


def test_big_endian_tiff_passes_and_a_png_named_jpg_says_what_it_is() -> None:
    check_leading_bytes(b"MM\x00*\x00\x00\x00\x08", "tiff")
    assert "(it looks like a PNG image)" in mismatch(IMAGE_HEADS["png"], "jpg")
    assert "(it looks like a PDF)" in mismatch(text_pdf(["x"])[:HEAD_SIZE], "png")
