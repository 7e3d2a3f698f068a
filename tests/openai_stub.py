"""An OpenAI-compatible embeddings server for the tests and the benchmarks, with faults on demand.

`POST /v1/embeddings` answers like OpenAI: each text a deterministic unit vector (seeded by its hash),
in the `float` or `base64` encoding the client asks for (the openai client asks for base64). It
answers at once, or after a fixed latency per request (each request sleeps in a thread of its own,
using no CPU: an I/O-bound embedder), unless a scripted fault is waiting: `POST /_script` with a list
of faults, each used by one request in order:
    {"status": 429, "retry_after": 2}   {"status": 500}   {"status": 401}
    {"delay": 5}  (answer late: a client timeout)   {"dimensions": 10}  (vectors of the wrong size)
`GET /_log` lists the embeddings requests since the last script: time, fault, number of texts.

    python -m tests.openai_stub --port 8089 --dimensions 384 [--latency 1.0] [--host 10.0.0.1]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from infra.stack import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]


def vector(text: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    values = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)
    normalised: np.ndarray = values / np.linalg.norm(values)
    return normalised


def embeddings(request: dict[str, Any], dimensions: int) -> dict[str, Any]:
    """OpenAI's answer to an embeddings request: one vector per input text, in the asked encoding."""
    texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        values = vector(str(text), dimensions)
        embedding: object = base64.b64encode(values.tobytes()).decode() if as_base64 else values.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": request.get("model", "stub"),
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, dimensions: int, latency: float = 0.0) -> None:
        super().__init__((host, port), Handler)
        self.dimensions = dimensions
        self.latency = latency
        self.lock = threading.Lock()
        self.script: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []

    def next_fault(self) -> dict[str, Any]:
        with self.lock:
            return self.script.pop(0) if self.script else {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubServer

    def do_GET(self) -> None:
        if self.path == "/_log":
            with self.server.lock:
                self._send(200, list(self.server.log))
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        if self.path == "/_script":
            with self.server.lock:
                self.server.script = list(body)
                self.server.log.clear()
            self._send(200, {"scripted": len(body)})
            return
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            self._send(404, {"error": {"message": "not found"}})
            return
        fault = self.server.next_fault()
        with self.server.lock:
            self.server.log.append({"t": time.time(), "fault": fault, "texts": len(body["input"])})
        time.sleep(fault.get("delay", self.server.latency))
        if "status" in fault:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            self._send(fault["status"], {"error": {"message": f"scripted {fault['status']}"}}, headers)
            return
        self._send(200, embeddings(body, fault.get("dimensions", self.server.dimensions)))

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def running(dimensions: int = 384, *, latency: float = 0.0, host: str = "127.0.0.1") -> Iterator[str]:
    """The stub as its own process on a free port of `host`, answering each request after `latency`
    seconds; yields its address (OpenAI's base URL is the address + `/v1`)."""
    port = free_port()
    command = [sys.executable, "-m", "tests.openai_stub", "--port", str(port), "--host", host]
    command += ["--dimensions", str(dimensions), "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        wait_until(lambda: _accepts(host, port), "OpenAI stub", timeout=30, process=process)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _accepts(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=0.5):
        return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.openai_stub", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each request waits")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = parser.parse_args()
    StubServer(args.host, args.port, args.dimensions, args.latency).serve_forever()


if __name__ == "__main__":
    main()
