"""The typed rows agree with the schema: a status the database allows is one the code can read."""

from __future__ import annotations

import re
from importlib import resources

from shared.rows import DocumentRow, DocumentStatus

STATUS_CHECK = re.compile(r"status\s+text NOT NULL CHECK \(status IN\s*\(([^)]*)\)\)")


def test_document_statuses_are_the_ones_the_schema_allows() -> None:
    migrations = "".join(
        f.read_text(encoding="utf-8")
        for f in (resources.files("shared") / "migrations").iterdir()
        if f.name.endswith(".sql")
    )
    allowed = STATUS_CHECK.findall(migrations)
    assert len(allowed) == 1, "the documents.status CHECK changed shape: update this test and DocumentStatus"
    assert set(re.findall(r"'([a-z_]+)'", allowed[0])) == {status.value for status in DocumentStatus}


def test_a_row_read_from_postgres_carries_its_status_as_a_member() -> None:
    columns = {name: None for name in DocumentRow.__dataclass_fields__}
    row = DocumentRow(**{**columns, "status": "queued"})
    assert row.status is DocumentStatus.QUEUED
    assert f"{row.status}" == "queued"  # messages and JSON show the plain value
