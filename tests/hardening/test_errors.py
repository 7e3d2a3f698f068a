"""Tenants see codes and plain sentences, never exception text or the bucket's own words; every answer
carries a request id the logs share; the CLI shows server text as text, never as markup or escapes."""

from __future__ import annotations

import io
import json

from rich.console import Console

from cli import render
from infra.stack import Stack
from tests.conftest import MULTIPART_THRESHOLD
from tests.helpers import ChuteClient
from tests.integration.test_cli import chute

HOSTILE_TEXT = (
    "The \x1b]0;owned\x07lighthouse\x1b[2J keeper wrote [bold red]loud[/bold red] notes "
    "and [link=https://evil.example]a link[/link] about the passing ships.\n"
)


def test_a_refused_multipart_completion_does_not_quote_the_bucket(client: ChuteClient) -> None:
    presigned = client.presign("big.docx", MULTIPART_THRESHOLD + 1).json()

    answer = client.http.post(
        f"/v1/uploads/{presigned['document_id']}/complete",
        json={"parts": [{"part_number": 1, "etag": '"made-up"'}]},
    )

    assert answer.status_code == 409, answer.text
    assert answer.json() == {
        "error": "upload_incomplete",
        "detail": (
            "The bucket could not assemble the upload; check every part was sent and its ETag is right."
        ),
    }


def test_every_answer_carries_a_request_id(client: ChuteClient) -> None:
    mine = client.http.get("/v1/documents", headers={"X-Request-ID": "trace-0123456789"})
    forged = client.http.get("/v1/documents", headers={"X-Request-ID": "x level=error forged"})
    refused = client.http.get("/v1/documents/not-a-uuid")

    assert mine.headers["X-Request-ID"] == "trace-0123456789"
    assert "forged" not in forged.headers["X-Request-ID"]
    assert len(refused.headers["X-Request-ID"]) == 32


def test_cli_search_prints_chunk_text_as_text(stack: Stack, tenant_key: str, client: ChuteClient) -> None:
    client.ingest("hostile.txt", HOSTILE_TEXT.encode())

    shown = chute(stack, tenant_key, "search", "lighthouse keeper", "-k", "1", env={"COLUMNS": "400"})

    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "[bold red]loud[/bold red]" in shown.stdout
    assert "[link=https://evil.example]a link[/link]" in shown.stdout


def test_cli_status_prints_metadata_and_filename_as_text(
    stack: Stack, tenant_key: str, client: ChuteClient
) -> None:
    metadata = {"team": "[blink]legal[/blink]"}
    answer = client.presign("[red]notes[/red].txt", 5, metadata=metadata).json()

    shown = chute(stack, tenant_key, "status", answer["document_id"])

    assert shown.returncode == 0, shown.stderr
    assert "[red]notes[/red].txt" in shown.stdout
    assert json.dumps(metadata) in shown.stdout


def test_tables_show_control_characters_as_escapes() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=200)
    doc = {
        "document_id": "d1",
        "filename": "report\x1b[2J\u202etxt.exe",
        "status": "failed",
        "error": {"code": "corrupt", "message": "bad \x1b]8;;https://evil\x07 link"},
        "updated_at": None,
    }

    console.print(render.documents_table([doc]))
    console.print(render.document_table(doc))

    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()
    assert "report\\x1b[2J\\u202etxt.exe" in out.getvalue()
