"""Tabular files: Excel workbooks through openpyxl and CSV through the standard library.

Rows become lines of text grouped into Table elements that each repeat the header row.
"""

from __future__ import annotations

import csv
import datetime
import io
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from shared.pipeline.elements import Element
from shared.pipeline.extractors import table_blocks, table_row_line
from shared.pipeline.sniff import decode_text

_DIALECT_SAMPLE_CHARS = 16 * 1024
_DELIMITERS = ",;\t|"
_MAX_FIELD_CHARS = 64 * 1024 * 1024


def extract_xlsx(path: Path) -> list[Element]:
    import openpyxl

    with warnings.catch_warnings():
        # openpyxl warns about workbook features it does not read (data validation, conditional
        # formats, missing default styles); none of them carry text.
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            elements: list[Element] = []
            for sheet_number, sheet in enumerate(workbook.worksheets, start=1):
                rows = sheet.iter_rows(values_only=True)
                blocks = table_blocks(_row_lines(rows), sheet_number)
                if blocks:
                    elements.append(Element(sheet.title, "Title", sheet_number))
                    elements += blocks
        finally:
            workbook.close()
    return elements


def extract_csv(path: Path) -> list[Element]:
    # The default limit (128 KiB a field) refuses real exports with long text fields; the upload
    # size limit already bounds a field. The limit is process-wide and only ever raised here.
    if csv.field_size_limit() < _MAX_FIELD_CHARS:
        csv.field_size_limit(_MAX_FIELD_CHARS)
    text = decode_text(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""), _dialect_of(text))
    return table_blocks(table_row_line(row) for row in reader)


def _row_lines(rows: Iterable[tuple[object, ...]]) -> Iterator[str]:
    for row in rows:
        yield table_row_line(_cell_text(value) for value in row)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def _dialect_of(text: str) -> type[csv.Dialect]:
    """The sniffed dialect when its delimiter is a usual one, else Excel's comma-separated dialect."""
    sample = text[:_DIALECT_SAMPLE_CHARS]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        return csv.excel
