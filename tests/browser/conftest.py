"""A real headless Chromium (Debian's `chromium`, driven by Playwright) against the test stack."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.stack import Stack
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = REPO / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}, which is missing. "
            "Install it with `apt-get install chromium` (Playwright's own browser downloads are not used).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class ChutePage:
    """The page under test, with what the tests need to know about the stack around it."""

    page: Any
    api_url: str
    bucket_url: str
    key: str
    page_errors: list[str] = field(default_factory=list)

    def open(self) -> None:
        self.page.goto(self.api_url + "/")

    def use_key(self, key: str | None = None) -> None:
        self.page.get_by_label("Your API key").fill(key if key is not None else self.key)
        self.page.get_by_role("button", name="Use key").click()

    def row(self, filename: str) -> Any:
        return self.page.locator(f'.file-row[data-filename="{filename}"]')

    def drop(self, files: list[tuple[str, bytes, str]]) -> None:
        """Drops files on the drop zone the way a person's drag and drop does (a `drop` event)."""
        payload = [
            {"name": name, "type": media, "data": base64.b64encode(data).decode()}
            for name, data, media in files
        ]
        self.page.evaluate(
            """(files) => {
                const transfer = new DataTransfer();
                for (const f of files) {
                    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                    transfer.items.add(new File([bytes], f.name, { type: f.type }));
                }
                const zone = document.querySelector('#drop-zone');
                zone.dispatchEvent(new DragEvent('dragenter', { dataTransfer: transfer, bubbles: true }));
                zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
            }""",
            payload,
        )

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def record_timing(name: str, value: Any) -> None:
    """Keeps numbers worth reporting (upload durations) next to the screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[name] = value
    path.write_text(json.dumps(timings, indent=2) + "\n")


@pytest.fixture
def chute_page(browser: Any, stack: Stack, tenant_key: str) -> Iterator[ChutePage]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    chute = ChutePage(
        page=page,
        api_url=f"http://127.0.0.1:{stack.ports.api}",
        bucket_url=stack.env["CHUTE_S3_ENDPOINT_URL"],
        key=tenant_key,
    )
    page.on("pageerror", lambda error: chute.page_errors.append(str(error)))
    try:
        chute.open()
        yield chute
    finally:
        context.close()
    assert not chute.page_errors, f"uncaught errors in the page: {chute.page_errors}"
