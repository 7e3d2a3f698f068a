"""The client commands: upload, status, ls, search, rm. They talk to the API over HTTP only.

Settings come from flags or the environment: `--url` / `CHUTE_URL` (else, in a project with a running
local stack, its address from `.chute/env`; else http://127.0.0.1:8000) and `--api-key` /
`CHUTE_API_KEY`. Exit codes: 0 success; 1 something failed (an API error, a file
rejected or not indexed); 2 bad usage (missing key, bad id, missing path); 130 interrupted.
Heavy modules (httpx, rich tables) are imported inside the commands so `chute --help` stays fast.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.client import FINAL_STATES, CliError
from cli.render import plain

if TYPE_CHECKING:
    from cli.client import ChuteApi

PANEL = "Documents"

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="CHUTE_URL",
        help="The Chute API's address (default: the local stack's, else http://127.0.0.1:8000).",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="CHUTE_API_KEY",
        help="Your API key (from `chute keys create`).",
        show_default=False,
        rich_help_panel="Connection",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")]


class SearchMode(StrEnum):
    hybrid = "hybrid"
    vector = "vector"
    keyword = "keyword"


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    print(f"error: {plain(message)}", file=sys.stderr, flush=True)
    return typer.Exit(exit_code)


@contextmanager
def reported() -> Iterator[None]:
    """Expected failures become one line on stderr and an exit code, never a traceback."""
    try:
        yield
    except CliError as error:
        raise fail(error.message, error.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def connect(url: str | None, api_key: str | None) -> ChuteApi:
    from cli.client import ChuteApi, resolve_key, resolve_url

    return ChuteApi(resolve_url(url), resolve_key(api_key))


def document_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CliError(
            f"'{value}' is not a document id (a UUID, as `chute ls` shows them).", exit_code=2
        ) from None


def parse_meta(pairs: list[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--meta takes KEY=VALUE, not '{pair}'.", exit_code=2)
        metadata[key.strip()] = value
    return metadata


# -- upload ---------------------------------------------------------------------------------------


def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files and folders; folders are walked recursively.", show_default=False),
    ],
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", "-i", help="Only files whose name or relative path matches this glob (repeatable)."
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Skip files and folders matching this glob (repeatable)."),
    ] = None,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include dotfiles and dot-folders.")] = False,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", "-m", help="Metadata KEY=VALUE stored on every document (repeatable)."),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            help="Tokens per chunk (32-8192; the local model reads 256) instead of the server's default."
        ),
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(help="Tokens of overlap between chunks (at most half the size).")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Follow the documents until indexed, or stop once queued."),
    ] = True,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop waiting after this many seconds (documents carry on).", min=0),
    ] = None,
    parallel: Annotated[int, typer.Option(help="Files sent at once.", min=1, max=32)] = 4,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Upload files and folders, then follow each document until it is indexed.

    Bytes go straight to the bucket (presigned POST, or multipart for large files).

    Ends with a summary table; the exit code is 1 when any file was rejected or failed.

    Example: chute upload docs/ --include '*.pdf' --exclude '*draft*'
    """
    import httpx

    from cli import render
    from cli.progress import LineReporter, RichReporter
    from cli.upload import Uploader, UploadOptions, collect_files, succeeded

    interrupted = False
    with reported():
        metadata = parse_meta(meta or [])
        chunking = {k: v for k, v in {"chunk_size": chunk_size, "overlap": overlap}.items() if v is not None}
        api = connect(url, api_key)
        jobs = collect_files(paths, include=include or [], exclude=exclude or [], hidden=hidden)
        if not jobs:
            raise CliError("No files to upload: nothing matched the paths and filters given.")
        options = UploadOptions(
            wait=wait,
            parallel=parallel,
            timeout=timeout,
            metadata=metadata,
            chunking=chunking or None,
        )
        err = render.stderr_console()
        reporter: RichReporter | LineReporter | None
        if quiet:
            reporter = None
        elif err.is_terminal:
            reporter = RichReporter(err, jobs, wait=wait)
        else:
            reporter = LineReporter(wait=wait)
        with api, httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0)) as bucket:
            uploader = Uploader(api, bucket, options, reporter)
            try:
                if reporter is not None:
                    with reporter:
                        uploader.run(jobs)
                else:
                    uploader.run(jobs)
            except KeyboardInterrupt:
                interrupted = True

    ok = all(succeeded(job, waited=wait) for job in jobs)
    if as_json:
        render.print_json(
            {
                "ok": ok,
                "summary": {
                    s: sum(1 for j in jobs if j.status == s) for s in sorted({j.status for j in jobs})
                },
                "files": [job.as_json() for job in jobs],
            }
        )
    else:
        out = render.stdout_console()
        out.print(render.upload_table(jobs))
        out.print(render.count_line(jobs), markup=False)
    if interrupted:
        raise fail("interrupted; the summary shows how far each file got", 130)
    if not ok:
        bad = sum(1 for job in jobs if not succeeded(job, waited=wait))
        raise fail(
            f"{bad} of {len(jobs)} file{'s' if len(jobs) != 1 else ''} did not make it; see the summary."
        )


# -- status ---------------------------------------------------------------------------------------


def status(
    document: Annotated[str, typer.Argument(help="The document id.", show_default=False)],
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for a final state; exit 1 unless it is indexed.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Show a document: status, pipeline step, chunks, error."""
    from cli import render

    with reported():
        doc_id = document_id(document)
        with connect(url, api_key) as api:
            doc = api.document(doc_id)
            while wait and doc["status"] not in FINAL_STATES:
                time.sleep(0.5)
                doc = api.document(doc_id)
    if as_json:
        render.print_json(doc)
    else:
        render.stdout_console().print(render.document_table(doc))
    if wait and doc["status"] != "indexed":
        raise typer.Exit(1)


# -- ls -------------------------------------------------------------------------------------------


def ls(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            help="Only documents in this state: awaiting_upload, queued, processing, indexed, failed, "
            "cancelled, expired.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """List your documents, newest first."""
    from cli import render

    items: list[dict[str, Any]] = []
    cursor: str | None = None
    with reported(), connect(url, api_key) as api:
        while len(items) < limit:
            page = api.documents(status=status, limit=min(200, limit - len(items)), cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    if as_json:
        render.print_json({"items": items, "next_cursor": cursor})
        return
    out = render.stdout_console()
    if not items:
        out.print("No documents" + (f" with status {status}." if status else "."), markup=False)
        return
    out.print(render.documents_table(items))
    more = f" (more: raise --limit above {limit})" if cursor else ""
    out.print(f"{len(items)} document{'s' if len(items) != 1 else ''}{more}", markup=False)


# -- search ---------------------------------------------------------------------------------------


def search(
    query: Annotated[str, typer.Argument(help="What to look for.", show_default=False)],
    k: Annotated[int, typer.Option("--k", "-k", help="How many passages (1-100).", min=1, max=100)] = 10,
    mode: Annotated[
        SearchMode, typer.Option(help="hybrid (vector + full text), vector, or keyword.")
    ] = SearchMode.hybrid,
    documents: Annotated[
        list[str] | None,
        typer.Option("--document", "-d", help="Only in this document (repeatable)."),
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option("--meta", "-m", help="Only documents with metadata KEY=VALUE (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Search your indexed documents; shows the best passages with file, page and score."""
    from cli import render

    with reported():
        ids = [document_id(d) for d in documents or []]
        metadata = parse_meta(meta or [])
        with connect(url, api_key) as api:
            answer = api.search(query, k=k, mode=mode.value, document_ids=ids, metadata=metadata)
    if as_json:
        render.print_json(answer)
        return
    out = render.stdout_console()
    results = answer.get("results", [])
    if not results:
        out.print("No results.", markup=False)
        return
    out.print(render.search_table(results))
    took = answer.get("took_ms")
    out.print(
        f"{len(results)} result{'s' if len(results) != 1 else ''}"
        + (f" in {took:.0f} ms" if isinstance(took, int | float) else ""),
        markup=False,
    )


# -- rm -------------------------------------------------------------------------------------------


def rm(
    documents: Annotated[list[str], typer.Argument(help="Document ids.", show_default=False)],
    url: UrlOption = None,
    api_key: KeyOption = None,
) -> None:
    """Delete documents: their chunks, their object in the bucket and their record."""
    from cli.client import ApiError

    failed = 0
    with reported():
        ids = [document_id(d) for d in documents]
        with connect(url, api_key) as api:
            for doc_id in ids:
                try:
                    api.delete(doc_id)
                except ApiError as error:
                    if error.status == 401:
                        raise
                    failed += 1
                    print(f"error: {doc_id}: {plain(error.message)}", file=sys.stderr, flush=True)
                    continue
                print(f"Deleted {doc_id}", flush=True)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    for command in (upload, status, ls, search, rm):
        app.command(rich_help_panel=PANEL)(command)
