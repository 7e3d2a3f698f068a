"""Pure rules behind uploads: object-key filenames, type resolution, part sizes, event keys."""

from __future__ import annotations

import pytest

from shared.errors import AppError, PayloadTooLarge, UnsupportedType
from shared.filetypes import file_type_of
from shared.services.bucket_notifications import object_created_keys
from shared.services.uploads import check_size, part_size_for, resolve_type, sanitise_filename
from shared.settings import Settings

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\ann\\Q3 plan (final).docx", "Q3_plan_final_.docx"),
        ("Übersicht März.md", "Ubersicht_Marz.md"),
        (".hidden.txt", "hidden.txt"),
        ("日本語.txt", "txt"),
        ("/", "document.pdf"),
    ],
)
def test_filenames_become_safe_key_segments(filename: str, expected: str) -> None:
    assert sanitise_filename(filename, "pdf") == expected


def test_key_segment_is_bounded() -> None:
    assert len(sanitise_filename("a" * 5000 + ".txt", "txt")) <= 120


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("a.PDF", None, "pdf"),
        ("a.bin", "application/pdf", "pdf"),
        ("notes", "text/plain; charset=utf-8", "txt"),
        ("page.htm", None, "html"),
        ("a.exe", None, None),
        ("a.pdf", "application/x-unknown", "pdf"),
    ],
)
def test_file_type_from_media_type_or_extension(
    filename: str, content_type: str | None, expected: str | None
) -> None:
    assert file_type_of(filename, content_type) == expected


def test_types_outside_the_allowed_list_are_refused() -> None:
    settings = Settings(allowed_types=["pdf"])
    assert resolve_type(settings, "a.pdf", None) == "pdf"
    with pytest.raises(UnsupportedType, match="CHUTE_ALLOWED_TYPES"):
        resolve_type(settings, "a.docx", None)
    with pytest.raises(UnsupportedType, match="Supported: pdf"):
        resolve_type(settings, "a.exe", None)


def test_images_are_refused_with_the_package_to_install_where_ocr_cannot_run() -> None:
    assert resolve_type(Settings(), "scan.TIF", None) == "tiff"
    assert resolve_type(Settings(), "photo", "image/jpeg") == "jpg"
    # A language whose data is not installed: what every image meets where Tesseract is missing.
    with pytest.raises(UnsupportedType) as missing:
        resolve_type(Settings(ocr_languages="qqq"), "scan.png", None)
    assert missing.value.status == 415
    assert "apt-get install tesseract-ocr tesseract-ocr-qqq" in missing.value.message
    with pytest.raises(UnsupportedType, match="CHUTE_OCR=off"):
        resolve_type(Settings(ocr="off"), "scan.webp", None)
    assert resolve_type(Settings(ocr="off"), "scan.pdf", None) == "pdf"  # text PDFs need no OCR


def test_size_limits() -> None:
    settings = Settings(max_upload_size=10)
    check_size(settings, 10)
    with pytest.raises(PayloadTooLarge):
        check_size(settings, 11)
    with pytest.raises(AppError) as empty:
        check_size(settings, 0)
    assert empty.value.code == "empty_file"


def test_part_size_grows_to_stay_within_ten_thousand_parts() -> None:
    assert part_size_for(100 * MiB, 16 * MiB) == 16 * MiB
    big = 5 * 1024**4  # 5 TiB, S3's largest object
    size = part_size_for(big, 16 * MiB)
    assert size % MiB == 0
    assert -(-big // size) <= 10_000


def test_only_object_created_records_for_our_bucket_count() -> None:
    notification = {
        "Records": [
            {
                "eventName": "s3:ObjectCreated:Put",
                "s3": {"bucket": {"name": "chute"}, "object": {"key": "t/1/a+b%C3%BC.txt"}},
            },
            {
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": "chute"}, "object": {"key": "t/2/x.txt"}},
            },
            {
                "eventName": "ObjectCreated:Post",
                "s3": {"bucket": {"name": "other"}, "object": {"key": "t/3/y.txt"}},
            },
            "garbage",
        ]
    }
    assert object_created_keys(notification, "chute") == ["t/1/a bü.txt"]
    assert object_created_keys({}, "chute") == []


def test_a_type_whose_extractor_is_not_installed_is_refused_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pptx" else real_find_spec(name, *a)
    )

    with pytest.raises(UnsupportedType, match="python-pptx") as refused:
        resolve_type(Settings(), "deck.pptx", None)
    assert refused.value.status == 415
    assert resolve_type(Settings(), "memo.docx", None) == "docx"
