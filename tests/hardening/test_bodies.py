"""Bodies are bounded before anything else: the key is checked before the body is read, a body past its
endpoint's limit is refused 413 while it is read, and text Postgres cannot store answers 422, not 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psutil
import pytest

from infra.stack import Stack
from tests.helpers import ChuteClient

MiB = 1024 * 1024


def chunks(total: int, piece: bytes = b" " * MiB) -> Iterator[bytes]:
    """`total` bytes of JSON whitespace, sent chunked (no Content-Length), as a careless client would."""
    yield b'{"filename": "a.txt", "size": 1, "metadata": {"x": "'
    for _ in range(total // len(piece)):
        yield piece


def proxied_upload(client: ChuteClient, form: bytes) -> httpx.Response:
    """`POST /v1/documents` with a multipart body written by hand, its boundary `b`."""
    return client.http.post(
        "/v1/documents", content=form, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )


def test_an_anonymous_300_mb_body_is_refused_unread(
    stack: Stack, anonymous: httpx.Client, client: ChuteClient
) -> None:
    # The API loads its query model in the background at start; a search waits for it, so the
    # memory measured below is the request's alone.
    assert client.http.post("/v1/search", json={"query": "warm up", "mode": "vector"}).status_code == 200
    api = psutil.Process(stack.processes["api"].pid)
    before = api.memory_info().rss

    answer = anonymous.post("/v1/uploads", content=chunks(300 * MiB), timeout=120)

    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    grown = (api.memory_info().rss - before) / MiB
    # Reading the body whole would take at least its 300 MiB.
    assert grown < 100, f"the API grew by {grown:.0f} MiB holding a body it should not have read"


def test_the_key_is_checked_before_the_body_is_parsed(anonymous: httpx.Client) -> None:
    answer = anonymous.post(
        "/v1/search", content=b"{not json", headers={"Authorization": "Bearer chute_wrong"}
    )

    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "unauthorized"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_json_body_past_the_limit_answers_413(client: ChuteClient, declared: bool) -> None:
    body = b"".join(chunks(3 * MiB)) if declared else chunks(3 * MiB)

    answer = client.http.post("/v1/uploads", content=body, headers={"Content-Type": "application/json"})

    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "too_large"
    assert "limit" in answer.json()["detail"]


def test_the_webhook_body_is_small(anonymous: httpx.Client) -> None:
    answer = anonymous.post(
        "/v1/events/s3",
        content=json.dumps({"Records": [{"x": "y" * 100}] * 10_000}),
        headers={"Authorization": "Bearer test-events-token", "Content-Type": "application/json"},
    )

    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "too_large"


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "bad\x00name.txt", "size": 5},
        {"filename": "bell\x07.txt", "size": 5},
        {"filename": "a.txt", "size": 5, "metadata": {"team": "le\x00gal"}},
        {"filename": "a.txt", "size": 5, "metadata": {"te\x1bam": "legal"}},
        {"filename": "a.txt", "size": 5, "metadata": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        {"filename": "a.txt", "size": 5, "metadata": {"notes": "x" * 20_000}},
    ],
    ids=["nul-filename", "bell-filename", "nul-metadata", "escape-key", "too-deep", "too-big"],
)
def test_control_characters_and_oversized_metadata_answer_422(client: ChuteClient, body: dict) -> None:
    answer = client.http.post("/v1/uploads", json=body)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "validation_error"


def test_metadata_with_a_tab_and_newline_is_accepted(client: ChuteClient) -> None:
    answer = client.presign("a.txt", 5, metadata={"note": "line one\n\tline two"})

    assert answer.status_code == 201, answer.text


def test_a_search_for_a_nul_byte_answers_422(client: ChuteClient) -> None:
    for body in ({"query": "a\x00b"}, {"query": "a", "filter": {"metadata": {"k": "\x00"}}}):
        answer = client.http.post("/v1/search", json=body)

        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "validation_error"


@pytest.mark.parametrize(
    ("filename", "metadata"),
    [("nul\x00.txt", "{}"), ("fine.txt", '{"team": "le\\u0000gal"}'), ("fine.txt", "[1, 2]")],
    ids=["nul-filename", "nul-metadata", "metadata-not-an-object"],
)
def test_a_proxied_upload_with_bad_text_is_refused_whole(
    client: ChuteClient, filename: str, metadata: str
) -> None:
    # Written by hand: httpx would percent-escape the NUL in the filename.
    form = (
        b'--b\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n' + metadata.encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + filename.encode() + b'"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello there\r\n--b--\r\n"
    )

    answer = proxied_upload(client, form)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "validation_error"
    assert client.http.get("/v1/documents").json()["items"] == []


def test_a_malformed_multipart_body_answers_400_and_leaves_nothing(client: ChuteClient) -> None:
    # Found by the fuzzer: a carriage return inside a part's header made the parser raise (500).
    form = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\rX\r\n\r\nhello\r\n--b--\r\n'
    )

    answer = proxied_upload(client, form)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_form"
    assert client.http.get("/v1/documents").json()["items"] == []
