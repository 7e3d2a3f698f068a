"""Legacy Office files (.doc, .xls, .ppt): converted to .docx/.xlsx/.pptx by LibreOffice headless, then
read by the same extractors as their modern forms (tables, sheets and slides as there).

LibreOffice was chosen by measurement (README.md, "Legacy Office files"): on eight real legacy files
it kept every word of the modern original, where antiword lost 14-100% on two of four .doc files,
catppt read nothing from either .ppt and xls2csv lost 2-15%. It costs 2-4 s a file (LibreOffice
starting) and 305 MB of Debian packages.

The file's OLE2 directory says what it really is (a `WordDocument`, `Workbook`/`Book` or `PowerPoint
Document` stream), so a workbook renamed .doc is a `type_mismatch`, not a conversion failure.
LibreOffice runs with a fresh profile in a temporary folder, in a new network namespace where the
kernel allows one (else with its proxy pointed nowhere), and in the caller's process group: the
isolated extraction child's (shared.pipeline.isolation), which is killed whole when the document's
deadline passes and cleared when the child ends. After `CONVERT_TIMEOUT_SECONDS` of its own the
conversion is stopped and the document fails `timeout`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from shared.errors import DocumentFailed, ErrorCode
from shared.pipeline.elements import Element
from shared.pipeline.extractors import ParserReport

CONVERT_TIMEOUT_SECONDS = 120
INSTALL_HINT = "apt-get install libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"

# legacy type -> (modern type it converts to, OLE2 streams that mark it, what it is called)
LEGACY_FORMATS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "doc": ("docx", ("WordDocument",), "a Word document (.doc)"),
    "xls": ("xlsx", ("Workbook", "Book"), "an Excel workbook (.xls)"),
    "ppt": ("pptx", ("PowerPoint Document",), "a PowerPoint presentation (.ppt)"),
}


def converter_missing() -> str | None:
    """None when LibreOffice is installed; else a sentence naming the packages to install."""
    if shutil.which("soffice") is None:
        return (
            "Legacy Office files (.doc, .xls, .ppt) need LibreOffice, which is not installed: "
            f"{INSTALL_HINT}."
        )
    return None


def extract_legacy(
    path: Path, file_type: str, modern_extractor: Callable[[Path], list[Element]]
) -> list[Element]:
    """The elements of a .doc/.xls/.ppt, by converting it and reading the result with `modern_extractor`."""
    modern, _, _ = LEGACY_FORMATS[file_type]
    _check_container(path, file_type)
    with tempfile.TemporaryDirectory(prefix="chute-legacy-") as folder:
        converted = _convert(path, modern, Path(folder))
        return modern_extractor(converted)


def _check_container(path: Path, file_type: str) -> None:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as container:
            streams = {entry[0] for entry in container.listdir()}
    except OSError as exc:
        raise ParserReport(f"its OLE2 container is damaged ({exc})") from exc
    if "EncryptedPackage" in streams:
        raise DocumentFailed(
            ErrorCode.ENCRYPTED,
            f"The .{file_type} file is password-protected. Remove the password and upload it again.",
        )
    for other, (_, markers, label) in LEGACY_FORMATS.items():
        if streams.intersection(markers):
            if other != file_type:
                raise DocumentFailed(
                    ErrorCode.TYPE_MISMATCH,
                    f"The file is named .{file_type} but it is {label}. "
                    f"Rename it to .{other} and upload it again.",
                )
            return
    raise DocumentFailed(
        ErrorCode.TYPE_MISMATCH,
        f"The file is named .{file_type} but it is an OLE2 file that holds no Word, Excel or PowerPoint "
        "document. Check that the right file was uploaded.",
    )


def _convert(path: Path, modern: str, folder: Path) -> Path:
    source = folder / f"document{path.suffix}"
    shutil.copyfile(path, source)
    command = [
        "soffice",
        f"-env:UserInstallation=file://{folder}/profile",
        "--headless",
        "--norestore",
        "--convert-to",
        modern,
        "--outdir",
        str(folder / "out"),
        str(source),
    ]
    # Nothing in a document may reach the network (linked images, OLE links): no proxy to go through.
    environment = os.environ | {
        "HOME": str(folder),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    process = subprocess.Popen(
        [*_no_network_prefix(), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment,
        # No session of its own: it stays in the extraction child's process group, which dies whole.
    )
    try:
        output, _ = process.communicate(timeout=CONVERT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()  # its helpers go with the child's process group when the child ends
        process.wait()
        raise DocumentFailed(
            ErrorCode.TIMEOUT,
            f"LibreOffice took longer than {CONVERT_TIMEOUT_SECONDS} s to convert the file and was stopped.",
        ) from None
    converted = folder / "out" / f"document.{modern}"
    if process.returncode != 0 or not converted.is_file():
        said = output.decode("utf-8", "replace").strip().splitlines()
        raise ParserReport(
            "LibreOffice could not convert it (the file may be damaged or password-protected)"
            + (f": {said[-1]}" if said else "")
        )
    return converted


@cache
def _no_network_prefix() -> tuple[str, ...]:
    """`unshare` into an empty network namespace where this kernel lets us, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    try:
        probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False, timeout=10)
    except subprocess.TimeoutExpired:
        return ()
    return (unshare, "-rn") if probe.returncode == 0 else ()
