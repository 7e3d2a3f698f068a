"""The proxied upload cannot be held open or left behind: a silent client is cut off with 408, a form
with too many parts is refused, and an API process that dies mid-stream leaves a row that expires and a
multipart upload the reconciler aborts."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from tests.hardening.conftest import ExtraApi
from tests.helpers import Bucket, ChuteClient

BOUNDARY = "hardening"


def form_head(filename: str = "slow.txt") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()


def open_upload(port: int, key: str, first_bytes: bytes, declared: int = 10_000_000) -> socket.socket:
    """A proxied upload whose client sent its headers and `first_bytes` of the body, then went quiet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        (
            "POST /v1/documents HTTP/1.1\r\nHost: chute\r\n"
            f"Authorization: Bearer {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + first_bytes
    )
    return sock


def read_answer(sock: socket.socket) -> str:
    """The HTTP answer's head and body, however the server splits them into packets."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_a_client_that_goes_quiet_is_cut_off(
    client: ChuteClient, bucket: Bucket, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    api = extra_api({"CHUTE_PROXIED_UPLOAD_IDLE_SECONDS": "1"})
    open_before = bucket.open_upload_ids()

    with open_upload(api.port, client.key, form_head() + b"the first words and then nothing") as sock:
        answer = read_answer(sock)

    assert answer.startswith("HTTP/1.1 408"), answer
    assert '"error":"upload_timeout"' in answer
    assert client.http.get("/v1/documents").json()["items"] == []
    assert bucket.open_upload_ids() <= open_before


def test_a_form_with_too_many_parts_is_refused(client: ChuteClient) -> None:
    files = [("note", (None, "x")) for _ in range(20)] + [("file", ("a.txt", b"hello", "text/plain"))]

    answer = client.http.post("/v1/documents", files=files)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_form"
    assert client.http.get("/v1/documents").json()["items"] == []


def test_an_api_killed_mid_upload_leaves_nothing_that_never_ends(
    client: ChuteClient, bucket: Bucket, extra_api: Callable[[dict[str, str]], ExtraApi]
) -> None:
    def open_uploads(object_key: str) -> list[object]:
        return bucket.s3.list_multipart_uploads(Bucket="chute", Prefix=object_key).get("Uploads", [])

    api = extra_api({"CHUTE_PROXIED_UPLOAD_TIMEOUT_SECONDS": "10"})
    with open_upload(api.port, client.key, form_head("killed.txt") + b"x" * 100_000):
        wait_for(lambda: client.http.get("/v1/documents").json()["items"] != [], "the row was never made")
        document = client.http.get("/v1/documents").json()["items"][0]
        streaming_into = open_uploads(document["object_key"])
        api.process.kill()
        api.process.wait()

    assert document["status"] == "awaiting_upload" and len(streaming_into) == 1
    wait_for(lambda: client.document(document["document_id"])["status"] == "expired", "the row never ended")
    assert open_uploads(document["object_key"]) == []
