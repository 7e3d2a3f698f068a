"""A stand-in embedder: a tiny OpenAI-compatible server whose `POST /v1/embeddings` answers at once,
or after a fixed latency per request.

Each text gets a deterministic unit vector of the configured dimension (seeded by the text's hash),
in the `float` or `base64` encoding the client asks for (the openai client asks for base64). Answering
at once, it lets a benchmark measure everything in the pipeline except the model; with a latency
(each request sleeps in a thread of its own, using no CPU), it is an I/O-bound embedder.

    python -m bench.openai_stub --port 8089 --dimensions 384 [--latency 1.0] [--host 10.0.0.1]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from bench.common import REPO
from infra.stack import free_port, wait_until


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


def make_handler(dimensions: int, latency: float = 0.0) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                self._send(404, {"error": {"message": "not found"}})
                return
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            time.sleep(latency)
            self._send(200, embeddings(request, dimensions))

        def _send(self, status: int, body: object) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def serve(port: int, dimensions: int, latency: float = 0.0, host: str = "127.0.0.1") -> None:
    server = ThreadingHTTPServer((host, port), make_handler(dimensions, latency))
    server.daemon_threads = True
    server.serve_forever()


@contextmanager
def running(dimensions: int = 384, *, latency: float = 0.0, host: str = "127.0.0.1") -> Iterator[str]:
    """Start the stub as its own process on a free port of `host`, answering each request after
    `latency` seconds; yields its base URL (…/v1)."""
    port = free_port()
    command = [sys.executable, "-m", "bench.openai_stub", "--port", str(port), "--host", host]
    command += ["--dimensions", str(dimensions), "--latency", str(latency)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        wait_until(lambda: _accepts(host, port), "OpenAI stub", timeout=30, process=process)
        yield f"http://{host}:{port}/v1"
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
    parser = argparse.ArgumentParser(prog="python -m bench.openai_stub", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each request waits")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    args = parser.parse_args()
    serve(args.port, args.dimensions, args.latency, args.host)


if __name__ == "__main__":
    main()
