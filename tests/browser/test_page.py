"""The upload page in a real browser: uploads straight to the bucket, live status, search, errors."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Route, expect

from infra.stack import Stack
from tests.browser.conftest import ChutePage, record_timing
from tests.conftest import MULTIPART_PART_SIZE, MULTIPART_THRESHOLD
from tests.documents import big_docx
from tests.helpers import Bucket, ChuteClient
from tests.unit.sample_documents import encrypted_pdf, text_pdf

INDEXED_TIMEOUT = 180_000
CAVES = "The survey crew mapped seventeen kilometres of limestone caves under the plateau."
MEMO = (
    "Memo: relief supplies for the flooded valley\n"
    "The trucks delivered 10,000 blankets, bottles of water and laptops to the shelters on Tuesday."
)


def watch_upload_percentages(chute: ChutePage) -> None:
    """Records every upload percentage a row shows, to check the bars moved with the bytes sent."""
    chute.page.evaluate(
        """() => {
            window.seenPercent = {};
            new MutationObserver((changes) => {
                for (const change of changes) {
                    const row = change.target;
                    const name = row.dataset.filename;
                    (window.seenPercent[name] ||= []).push(Number(row.dataset.uploadPercent));
                }
            }).observe(document.querySelector('#uploads'),
                       { subtree: true, attributes: true, attributeFilter: ['data-upload-percent'] });
        }"""
    )


def test_uploads_a_pdf_and_a_multipart_file_then_finds_the_passage(
    chute_page: ChutePage, tmp_path: Path
) -> None:
    page = chute_page.page
    memo = tmp_path / "memo.pdf"
    memo.write_bytes(text_pdf([MEMO]))
    big = tmp_path / "caves.docx"
    big.write_bytes(big_docx(MULTIPART_THRESHOLD + MULTIPART_PART_SIZE, CAVES))
    assert big.stat().st_size > MULTIPART_THRESHOLD
    bucket_requests: list[str] = []
    page.on(
        "request",
        lambda r: bucket_requests.append(r.method) if r.url.startswith(chute_page.bucket_url) else None,
    )

    chute_page.use_key()
    expect(page.locator("#key-message")).to_contain_text("Key accepted")
    watch_upload_percentages(chute_page)
    page.get_by_label("Choose files…").set_input_files([memo, big])

    memo_row, big_row = chute_page.row("memo.pdf"), chute_page.row("caves.docx")
    for row in (memo_row, big_row):
        expect(row).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)
        expect(row.locator(".upload-bar")).to_have_js_property("value", 100)
        expect(row.locator(".upload-text")).to_contain_text("100 %")
        expect(row.locator(".pipeline-bar")).to_have_js_property("value", 100)
        expect(row.locator(".message")).to_contain_text(re.compile(r"Indexed: \d+ chunks?"))
        expect(row).to_have_attribute("data-watch", "live")
    expect(memo_row).to_have_attribute("data-method", "POST")
    expect(big_row).to_have_attribute("data-method", "MULTIPART")
    parts = -(-big.stat().st_size // MULTIPART_PART_SIZE)
    assert bucket_requests.count("PUT") == parts, bucket_requests  # every part, sent from the browser
    assert bucket_requests.count("POST") == 1, bucket_requests  # the PDF's presigned form
    seen = page.evaluate("window.seenPercent")
    assert seen["caves.docx"][-1] == 100 and any(0 < p < 100 for p in seen["caves.docx"]), seen
    upload_ms = int(big_row.get_attribute("data-upload-ms") or 0)
    record_timing(
        "multipart_upload",
        {"bytes": big.stat().st_size, "parts": parts, "ms": upload_ms, "seen": seen["caves.docx"]},
    )
    print(f"multipart upload of {big.stat().st_size} bytes in {parts} parts took {upload_ms} ms")
    expect(page.locator('#documents tbody tr[data-status="indexed"]')).to_have_count(2)
    chute_page.screenshot("01-uploaded-and-indexed")

    page.get_by_label("Search your documents").fill("bottles of water blankets laptops delivered")
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.locator("#results .hit").first
    # The API may still be loading its query model on a busy machine: the first search can take seconds.
    expect(first.locator(".file-name")).to_have_text("memo.pdf", timeout=60_000)
    expect(first.locator(".page")).to_have_text("page 1")
    expect(first.locator(".passage")).to_contain_text("10,000 blankets")
    chute_page.screenshot("02-search")

    page.get_by_label("Search your documents").fill("limestone caves survey")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results .hit").first.locator(".file-name")).to_have_text("caves.docx")
    expect(page.locator("#results .hit").first.locator(".passage")).to_contain_text("limestone caves")


def test_failing_documents_show_their_error_and_can_be_deleted(
    chute_page: ChutePage, client: ChuteClient
) -> None:
    page = chute_page.page
    chute_page.use_key()
    expect(page.locator("#key-message")).to_contain_text("Key accepted")

    password_protected = encrypted_pdf(text_pdf([MEMO]), user_password="open", owner_password="owner")

    chute_page.drop(
        [
            ("password.pdf", password_protected, "application/pdf"),
            ("setup.exe", b"MZ\x90\x00 not a document", "application/x-msdownload"),
        ]
    )

    locked, program = chute_page.row("password.pdf"), chute_page.row("setup.exe")
    expect(program).to_have_attribute("data-status", "failed")
    expect(program.locator(".message")).to_contain_text("'setup.exe' is not a supported document type")
    expect(locked).to_have_attribute("data-status", "failed", timeout=INDEXED_TIMEOUT)
    expect(locked.locator(".message")).to_contain_text("password-protected")
    expect(locked.locator(".message")).to_contain_text("(encrypted)")
    expect(locked.locator(".upload-bar")).to_have_js_property("value", 100)
    page.get_by_text("Failed", exact=True).and_(page.locator("label")).click()
    expect(page.locator("#documents tbody tr")).to_have_count(1)
    expect(page.locator("#documents tbody tr td.error")).to_contain_text("password-protected")
    chute_page.screenshot("03-failed-document")

    page.get_by_role("button", name="Delete password.pdf").first.click()
    expect(locked).to_have_attribute("data-status", "deleted")
    expect(page.locator("#documents-note")).to_contain_text("No documents with status “Failed” yet.")
    document_id = locked.get_attribute("data-document-id")
    assert client.http.get(f"/v1/documents/{document_id}").status_code == 404


def test_cancel_stops_a_multipart_upload_and_aborts_it(
    chute_page: ChutePage, client: ChuteClient, stack: Stack, tmp_path: Path
) -> None:
    page = chute_page.page
    big = tmp_path / "abandoned.docx"
    big.write_bytes(big_docx(MULTIPART_THRESHOLD + MULTIPART_PART_SIZE, CAVES))
    held: list[Route] = []
    failed: list[str] = []

    def hold_later_parts(route: Route) -> None:
        """Part 1 goes through; the others stay in flight until the page gives them up."""
        if route.request.method == "PUT" and "partNumber=1&" not in route.request.url + "&":
            held.append(route)
        else:
            route.continue_()

    page.route(f"{chute_page.bucket_url}/**", hold_later_parts)
    page.on("requestfailed", lambda r: failed.append(r.url) if r.method == "PUT" else None)
    chute_page.use_key()
    expect(page.locator("#key-message")).to_contain_text("Key accepted")

    with page.expect_response(lambda r: r.url.endswith("/v1/uploads")) as presigned:
        page.get_by_label("Choose files…").set_input_files(big)
    upload_id = presigned.value.json()["upload"]["upload_id"]
    row = chute_page.row("abandoned.docx")
    expect(row).to_have_attribute("data-status", "uploading")
    # Not wait_for_function: it evaluates a string in the page, which the page's CSP forbids.
    expect(row).to_have_attribute("data-upload-percent", re.compile(r"^(0\.\d*[1-9]|[1-9])"))
    deadline = time.monotonic() + 30
    while len(held) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(held) == 2, "the later parts were not sent in parallel"
    assert upload_id in Bucket(stack.env).open_upload_ids()
    expect(page.locator('#documents tbody tr[data-status="awaiting_upload"]')).to_have_count(1)
    chute_page.screenshot("04-uploading-in-parts")

    row.get_by_role("button", name="Cancel abandoned.docx").click()

    expect(row).to_have_attribute("data-status", "cancelled")
    expect(row.locator(".message")).to_contain_text("upload was stopped")
    expect(row.get_by_role("button", name="Cancel abandoned.docx")).to_be_hidden()
    page.wait_for_timeout(500)
    assert len(failed) == 2, f"in-flight part uploads were not stopped: {failed}"
    assert client.document(row.get_attribute("data-document-id") or "")["status"] == "cancelled"
    assert upload_id not in Bucket(stack.env).open_upload_ids()
    chute_page.screenshot("05-cancelled")
    page.unroute(f"{chute_page.bucket_url}/**")


def test_a_failed_part_is_retried(chute_page: ChutePage, tmp_path: Path) -> None:
    page = chute_page.page
    big = tmp_path / "retried.docx"
    big.write_bytes(big_docx(MULTIPART_THRESHOLD + 1024, CAVES))
    attempts: dict[str, int] = {}

    def fail_part_two_once(route: Route) -> None:
        url = route.request.url
        if route.request.method == "PUT" and "partNumber=2" in url:
            attempts["2"] = attempts.get("2", 0) + 1
            if attempts["2"] == 1:
                route.fulfill(
                    status=500,
                    headers={"Access-Control-Allow-Origin": "*"},
                    body="<Error><Code>InternalError</Code><Message>injected failure</Message></Error>",
                )
                return
        route.continue_()

    page.route(f"{chute_page.bucket_url}/**", fail_part_two_once)
    chute_page.use_key()
    expect(page.locator("#key-message")).to_contain_text("Key accepted")
    page.get_by_label("Choose files…").set_input_files(big)

    row = chute_page.row("retried.docx")
    expect(row).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)
    expect(row).to_have_attribute("data-retries", "1")
    assert attempts == {"2": 2}
    page.unroute(f"{chute_page.bucket_url}/**")


def test_the_page_polls_when_the_event_stream_fails(chute_page: ChutePage) -> None:
    page = chute_page.page
    streams: list[str] = []

    def refuse_stream(route: Route) -> None:
        streams.append(route.request.url)
        route.abort()

    page.route("**/v1/documents/*/events", refuse_stream)
    chute_page.use_key()
    expect(page.locator("#key-message")).to_contain_text("Key accepted")
    chute_page.drop([("note.txt", b"The lighthouse keeper logged every passing ship.\n", "text/plain")])

    row = chute_page.row("note.txt")
    expect(row).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)
    expect(row).to_have_attribute("data-watch", "polling")
    assert len(streams) == 2  # one connect, one reconnect, then polling
    page.unroute("**/v1/documents/*/events")


def test_a_bad_key_shows_a_clear_message(chute_page: ChutePage) -> None:
    page = chute_page.page

    chute_page.use_key("not-a-real-key")

    message = page.locator("#key-message")
    expect(message).to_contain_text("The API key was refused: The API key is not valid.")
    expect(page.get_by_label("Your API key")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#documents-note")).to_contain_text("Enter a valid API key")
    chute_page.screenshot("06-bad-key")
    page.get_by_label("Choose files…").set_input_files(
        files=[{"name": "note.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    expect(message).to_contain_text("Nothing was uploaded: the API key entered was refused.")
    expect(page.locator(".file-row")).to_have_count(0)


def test_the_key_is_kept_for_the_tab(chute_page: ChutePage) -> None:
    page = chute_page.page
    chute_page.use_key()
    expect(page.locator("#key-message")).to_contain_text("Key accepted")

    page.reload()

    expect(page.get_by_label("Your API key")).to_have_value(chute_page.key)
    expect(page.locator("#key-message")).to_contain_text("Key accepted")
    assert page.evaluate("sessionStorage.getItem('chute.apiKey')") == chute_page.key
    assert page.evaluate("localStorage.length") == 0
