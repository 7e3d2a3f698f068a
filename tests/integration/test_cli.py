"""The `chute` command as users run it: the installed entry point, as a subprocess, against the stack.

Each test checks what a person or a script relies on: the exit code, the words on stdout and stderr,
and what the API holds afterwards. The last tests drive the multipart transfer in-process against a
mock bucket, to pin the retry and ETag rules without a flaky network.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.stack import Stack, free_port
from tests.conftest import MULTIPART_PART_SIZE, MULTIPART_THRESHOLD
from tests.documents import big_docx
from tests.helpers import ChuteClient

CHUTE = Path(sys.executable).parent / "chute"
LIGHTHOUSE = (
    "The lighthouse keeper logged every passing ship in a leather-bound ledger, "
    "noting the weather, the flag and the hour of each sighting."
)
TIDES = "# Tides\n\nSpring tides follow the new and the full moon, when the sun and moon pull together.\n"
SHIPS = "ship,year,harbour\nAurora,1901,Falmouth\nBeacon,1923,Penzance\n"


def chute(
    stack: Stack | None,
    key: str | None,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `chute`, with no CHUTE_* variables but CHUTE_URL / CHUTE_API_KEY pointing
    at the stack and the key given."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHUTE_") and k != "COLUMNS"}
    if stack is not None:
        environment["CHUTE_URL"] = stack.api_url
    if key is not None:
        environment["CHUTE_API_KEY"] = key
    environment.update(env or {})
    return subprocess.run(
        [str(CHUTE), *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def row(stdout: str, name: str) -> str:
    """The summary table's line for a file (its first cell starts with the name)."""
    lines = [line for line in stdout.splitlines() if re.match(rf"^│ {re.escape(name)}\s", line)]
    assert len(lines) == 1, f"no single row for {name} in:\n{stdout}"
    return lines[0]


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def all_documents(client: ChuteClient) -> dict[str, dict[str, Any]]:
    items = client.http.get("/v1/documents", params={"limit": 200}).json()["items"]
    return {doc["filename"]: doc for doc in items}


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- upload -----------------------------------------------------------------------------------------


def test_upload_reports_the_rejected_file_and_indexes_the_others(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    docs = write(
        tmp_path / "docs",
        {
            "lighthouse.txt": LIGHTHOUSE,
            "tides.md": TIDES,
            "sub/ships.csv": SHIPS,
            "tool.exe": b"MZ\x90\x00\x03\x00\x00\x00 not a document",
        },
    )

    result = chute(stack, tenant_key, "upload", str(docs))

    assert result.returncode == 1, result.stdout + result.stderr
    rejected = cells(row(result.stdout, "tool.exe"))
    assert rejected[1] == "rejected"
    assert rejected[4].startswith("unsupported_type:")
    assert (
        "rejected  tool.exe: unsupported_type: 'tool.exe' is not a supported document type" in result.stderr
    )
    assert "1 of 4 files" in result.stderr
    assert "Traceback" not in result.stderr
    documents = all_documents(client)
    assert set(documents) == {"lighthouse.txt", "tides.md", "sub/ships.csv"}
    for name, doc in documents.items():
        assert doc["status"] == "indexed", doc
        line = cells(row(result.stdout, name))
        assert line[1] == "indexed"
        assert line[2] == str(doc["chunk_count"]) and doc["chunk_count"] >= 1
        assert line[3] == doc["document_id"]
    assert "3 indexed, 1 rejected" in result.stdout


def test_clean_upload_with_filters_exits_zero_with_a_summary(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    docs = write(
        tmp_path / "docs",
        {
            "lighthouse.txt": LIGHTHOUSE,
            "notes/TIDES.MD": TIDES,
            "draft-plan.txt": "A draft that must stay home.",
            "drafts/later.txt": "Also a draft.",
            "ships.csv": SHIPS,  # not included by the globs
            ".secret.txt": "hidden files are skipped in folders",
        },
    )

    result = chute(
        stack,
        tenant_key,
        "upload",
        str(docs),
        "--include",
        "*.txt",
        "--include",
        "*.md",
        "--exclude",
        "*draft*",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    documents = all_documents(client)
    assert set(documents) == {"lighthouse.txt", "notes/TIDES.MD"}
    for name, doc in documents.items():
        line = cells(row(result.stdout, name))
        assert line[1] == "indexed"
        assert line[2] == str(doc["chunk_count"]) and doc["chunk_count"] >= 1
        assert line[4] == ""
    assert "2 indexed" in result.stdout
    assert result.stderr.count("indexed ") == 2  # the plain progress lines for logs


def test_upload_json_no_wait_returns_once_queued(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    write(tmp_path, {"lighthouse.txt": LIGHTHOUSE})

    result = chute(
        stack,
        tenant_key,
        "upload",
        str(tmp_path / "lighthouse.txt"),
        "--no-wait",
        "--json",
        "--meta",
        "team=ops",
        "--chunk-size",
        "500",
        "--overlap",
        "50",
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is True
    [file] = answer["files"]
    assert file["filename"] == "lighthouse.txt"
    assert file["size"] == len(LIGHTHOUSE)
    assert file["status"] in ("queued", "processing", "indexed")
    assert file["error"] is None
    document = client.wait(file["document_id"])
    assert document["status"] == "indexed"
    assert document["metadata"] == {"team": "ops"}


def test_big_file_goes_up_in_parts(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    data = big_docx(
        MULTIPART_THRESHOLD + MULTIPART_PART_SIZE, "Surveyors charted the flooded limestone caves."
    )
    assert len(data) >= int(stack.env["CHUTE_MULTIPART_THRESHOLD"]), "the server would not use multipart"
    (tmp_path / "caves.docx").write_bytes(data)

    result = chute(stack, tenant_key, "upload", str(tmp_path), "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    [file] = json.loads(result.stdout)["files"]
    assert file["status"] == "indexed", file
    document = client.document(file["document_id"])
    assert document["size"] == len(data)
    assert document["chunk_count"] >= 1
    assert client.search("flooded limestone caves", k=1)[0]["document_id"] == file["document_id"]


def test_upload_on_a_terminal_draws_progress_bars(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    """stderr on a pseudo-terminal: rich bars per file and overall; stdout (a pipe) keeps the table."""
    write(tmp_path, {"lighthouse.txt": LIGHTHOUSE, "tides.md": TIDES})
    master, slave = pty.openpty()
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                block = os.read(master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                return
            if not block:
                return
            screen.extend(block)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHUTE_")}
    environment |= {
        "CHUTE_URL": stack.api_url,
        "CHUTE_API_KEY": tenant_key,
        "COLUMNS": "120",
        "TERM": "xterm-256color",
    }
    try:
        result = subprocess.run(
            [str(CHUTE), "upload", str(tmp_path)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)

    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    assert result.returncode == 0, drawn
    assert "all 2 files" in drawn
    assert "━" in drawn  # the bars
    assert "indexed · 1 chunk" in drawn
    assert "documents done" in drawn
    assert "2 indexed" in result.stdout
    assert {d["status"] for d in all_documents(client).values()} == {"indexed"}


def test_upload_failures_in_the_pipeline_and_at_completion_exit_one(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    write(tmp_path, {"blank.txt": "\n\n   \n", "fake.pdf": "plain text wearing a .pdf name", "empty.md": ""})

    result = chute(stack, tenant_key, "upload", str(tmp_path), "--json")

    assert result.returncode == 1
    files = {f["filename"]: f for f in json.loads(result.stdout)["files"]}
    assert (files["blank.txt"]["status"], files["blank.txt"]["error"]["code"]) == ("failed", "no_text")
    assert (files["fake.pdf"]["status"], files["fake.pdf"]["error"]["code"]) == ("failed", "type_mismatch")
    assert (files["empty.md"]["status"], files["empty.md"]["error"]["code"]) == ("rejected", "empty_file")
    assert "3 of 3 files" in result.stderr


def test_upload_of_a_missing_path_sends_nothing(
    stack: Stack, tenant_key: str, client: ChuteClient, tmp_path: Path
) -> None:
    write(tmp_path, {"lighthouse.txt": LIGHTHOUSE})

    result = chute(stack, tenant_key, "upload", str(tmp_path), str(tmp_path / "nope"))

    assert_clean_failure(result)
    assert result.returncode == 2
    assert "No such file or folder" in result.stderr and "nope" in result.stderr
    assert all_documents(client) == {}


# -- status, ls, search, rm ----------------------------------------------------------------------------


def test_status_ls_search_and_rm(stack: Stack, tenant_key: str, client: ChuteClient) -> None:
    doc_id = client.ingest("lighthouse.txt", LIGHTHOUSE.encode())["document_id"]

    status = chute(stack, tenant_key, "status", doc_id)
    assert status.returncode == 0, status.stderr
    assert doc_id in status.stdout and "lighthouse.txt" in status.stdout
    assert re.search(r"Status\s+indexed", status.stdout)
    as_json = chute(stack, tenant_key, "status", doc_id, "--json")
    assert json.loads(as_json.stdout) == client.document(doc_id)

    listed = chute(stack, tenant_key, "ls")
    assert listed.returncode == 0
    assert doc_id in listed.stdout and "lighthouse.txt" in listed.stdout and "indexed" in listed.stdout
    assert "1 document" in listed.stdout
    none_failed = chute(stack, tenant_key, "ls", "--status", "failed")
    assert none_failed.returncode == 0
    assert "No documents with status failed." in none_failed.stdout
    listed_json = json.loads(chute(stack, tenant_key, "ls", "--json", "--limit", "5").stdout)
    assert [d["document_id"] for d in listed_json["items"]] == [doc_id]
    bad_status = chute(stack, tenant_key, "ls", "--status", "bogus")
    assert_clean_failure(bad_status)
    assert "Unknown status 'bogus'" in bad_status.stderr

    found = chute(stack, tenant_key, "search", "who recorded the passing ships?", "--k", "3")
    assert found.returncode == 0, found.stderr
    hit = cells(row(found.stdout, "1"))
    assert hit[2] == "lighthouse.txt"
    assert hit[3] == "-"  # a text file has no pages
    assert float(hit[1]) > 0
    assert "leather-bound ledger" in found.stdout
    keyword = json.loads(chute(stack, tenant_key, "search", "ledger", "--mode", "keyword", "--json").stdout)
    assert keyword["results"][0]["document_id"] == doc_id
    assert keyword["results"][0]["filename"] == "lighthouse.txt"
    nothing = chute(stack, tenant_key, "search", "zyzzyva", "--mode", "keyword")
    assert nothing.returncode == 0 and "No results." in nothing.stdout

    removed = chute(stack, tenant_key, "rm", doc_id)
    assert removed.returncode == 0, removed.stderr
    assert f"Deleted {doc_id}" in removed.stdout
    gone = chute(stack, tenant_key, "status", doc_id)
    assert_clean_failure(gone)
    assert gone.returncode == 1 and "No such document." in gone.stderr
    again = chute(stack, tenant_key, "rm", doc_id)
    assert_clean_failure(again)
    assert again.returncode == 1 and doc_id in again.stderr and "No such document." in again.stderr


# -- settings and failures ---------------------------------------------------------------------------


def test_a_wrong_key_says_so(stack: Stack, tmp_path: Path) -> None:
    write(tmp_path, {"lighthouse.txt": LIGHTHOUSE})
    for args in (["ls"], ["search", "ships"], ["upload", str(tmp_path)]):
        result = chute(stack, "chute_not-a-real-key", *args)
        assert_clean_failure(result)
        assert result.returncode == 1
        assert "API key was refused" in result.stderr and "CHUTE_API_KEY" in result.stderr, args


def test_in_the_project_directory_chute_finds_the_local_stack(stack: Stack) -> None:
    """Where `make up` ran, nothing needs exporting: `chute keys create` (from any folder below the
    project) and the client commands read the stack's `.chute/env`. The test stack is laid out the same
    way, on free ports: the API is not at the default address."""
    project = stack.root.parent
    below = project / "notes" / "drafts"
    below.mkdir(parents=True, exist_ok=True)

    created = chute(None, None, "keys", "create", "--tenant", f"p-{uuid.uuid4().hex[:10]}", cwd=below)

    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    listed = chute(None, key, "ls", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert "No documents." in listed.stdout


@pytest.mark.parametrize("command", [["keys", "create", "--tenant", "t"], ["keys", "list"], ["migrate"]])
def test_without_a_stack_or_settings_the_admin_commands_say_what_to_do(
    command: list[str], tmp_path: Path
) -> None:
    result = chute(None, None, *command, cwd=tmp_path)

    assert_clean_failure(result)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: no Chute stack found: start one with `make up`, or set CHUTE_DATABASE_URL"
    )


def test_flags_override_the_environment(stack: Stack, tenant_key: str) -> None:
    url = stack.api_url
    result = chute(
        None,
        "chute_wrong",
        "ls",
        "--url",
        url,
        "--api-key",
        tenant_key,
        env={"CHUTE_URL": "http://127.0.0.1:9"},
    )
    assert result.returncode == 0, result.stderr
    assert "No documents." in result.stdout


def test_unreachable_server_missing_key_and_bad_id_are_one_line_each() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"

    unreachable = chute(None, "some-key", "ls", env={"CHUTE_URL": nobody})
    assert_clean_failure(unreachable)
    assert unreachable.returncode == 1
    assert f"Cannot reach the Chute API at {nobody}" in unreachable.stderr

    no_key = chute(None, None, "ls", env={"CHUTE_URL": nobody})
    assert_clean_failure(no_key)
    assert no_key.returncode == 2 and "No API key" in no_key.stderr

    bad_id = chute(None, "some-key", "status", "not-an-id", env={"CHUTE_URL": nobody})
    assert_clean_failure(bad_id)
    assert bad_id.returncode == 2 and "'not-an-id' is not a document id" in bad_id.stderr


def test_help_lists_the_commands_without_heavy_imports() -> None:
    result = chute(None, None, "--help")
    assert result.returncode == 0
    for command in ("upload", "status", "ls", "search", "rm", "keys", "migrate"):
        assert re.search(rf"│ {command}\s", result.stdout), command
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cli.main; print(sorted(m for m in ('httpx', 'shared.settings', 'pydantic') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert probe.stdout.strip() == "[]"


# -- the transfer rules, against a mock bucket ---------------------------------------------------------


class MockBucket:
    """Answers presigned part PUTs; `failures[n]` makes part n fail that many times first."""

    def __init__(self, failures: dict[int, int], status: int = 500) -> None:
        self.failures = dict(failures)
        self.status = status
        self.bodies: dict[int, bytes] = {}
        self.attempts: dict[int, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["partNumber"])
        body = request.read()
        assert request.headers["Content-Length"] == str(len(body))
        with self.lock:
            self.attempts[number] = self.attempts.get(number, 0) + 1
            if self.failures.get(number, 0) > 0:
                self.failures[number] -= 1
                return httpx.Response(self.status, text="<Error><Code>InternalError</Code></Error>")
            self.bodies[number] = body
        return httpx.Response(200, headers={"ETag": f'"etag-{number}"'})


def multipart_job(tmp_path: Path, size: int, part_size: int) -> tuple[Any, dict[str, Any], bytes]:
    from cli.upload import FileJob

    data = os.urandom(size)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    count = -(-size // part_size)
    upload = {
        "method": "MULTIPART",
        "upload_id": "u1",
        "part_size": part_size,
        "parts": [
            {"part_number": n, "url": f"http://bucket.test/k?uploadId=u1&partNumber={n}"}
            for n in range(count, 0, -1)  # out of order on purpose
        ],
    }
    return FileJob(path=path, name="big.bin", size=size), upload, data


def test_parts_are_retried_and_completed_with_their_etags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cli.transfer

    monkeypatch.setattr(cli.transfer, "RETRY_DELAY", 0.01)
    job, upload, data = multipart_job(tmp_path, 10 * 1024 + 7, 1024)
    bucket = MockBucket(failures={3: 3, 7: 1})
    sent: list[int] = []

    with httpx.Client(transport=httpx.MockTransport(bucket)) as http:
        parts = cli.transfer.put_parts(http, upload, job, sent.append, threading.Event())

    assert parts == [{"part_number": n, "etag": f'"etag-{n}"'} for n in range(1, 12)]
    assert b"".join(bucket.bodies[n] for n in range(1, 12)) == data
    assert bucket.attempts[3] == 4 and bucket.attempts[7] == 2 and bucket.attempts[1] == 1
    assert sum(sent) == len(data)  # bytes of failed attempts are taken back from the progress


def test_a_part_that_keeps_failing_fails_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cli.transfer

    monkeypatch.setattr(cli.transfer, "RETRY_DELAY", 0.01)
    job, upload, _ = multipart_job(tmp_path, 4096, 1024)
    bucket = MockBucket(failures={2: 4})

    with (
        httpx.Client(transport=httpx.MockTransport(bucket)) as http,
        pytest.raises(cli.transfer.TransferError, match="InternalError"),
    ):
        cli.transfer.put_parts(http, upload, job, lambda n: None, threading.Event())
    assert bucket.attempts[2] == 4  # the first try and three retries


def test_collect_files_walks_folders_with_globs(tmp_path: Path) -> None:
    from cli.client import CliError
    from cli.upload import collect_files

    write(
        tmp_path,
        {
            "a.PDF": "x",
            "b.txt": "x",
            "sub/c.pdf": "x",
            "sub/draft-d.pdf": "x",
            "drafts/e.pdf": "x",
            ".git/f.pdf": "x",
        },
    )

    jobs = collect_files([tmp_path], include=["*.pdf"], exclude=["*draft*"])
    assert [job.name for job in jobs] == ["a.PDF", "sub/c.pdf"]
    everything = collect_files([tmp_path, tmp_path / "b.txt"], include=[], exclude=[], hidden=True)
    assert [job.name for job in everything] == [
        "a.PDF",
        "b.txt",
        ".git/f.pdf",
        "drafts/e.pdf",
        "sub/c.pdf",
        "sub/draft-d.pdf",
    ]
    with pytest.raises(CliError, match="No such file or folder"):
        collect_files([tmp_path / "missing"], include=[], exclude=[])
