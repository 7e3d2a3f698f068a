"""An instant embedder: a tiny OpenAI-compatible server whose `POST /v1/embeddings` answers at once.

Each text gets a deterministic unit vector of the configured dimension (seeded by the text's hash),
in the `float` or `base64` encoding the client asks for (the openai client asks for base64). With
it, a benchmark measures everything in the pipeline except the model.

    python -m bench.openai_stub --port 8089 --dimensions 384
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from bench.common import REPO
from infra.stack import free_port, port_open, wait_until


def vector(text: str, dimensions: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    values = np.random.default_rng(seed).standard_normal(dimensions).astype(np.float32)
    normalised: np.ndarray = values / np.linalg.norm(values)
    return normalised


def make_handler(dimensions: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                self._send(404, {"error": {"message": "not found"}})
                return
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            texts = request["input"]
            texts = [texts] if isinstance(texts, str) else texts
            as_base64 = request.get("encoding_format") == "base64"
            data = []
            for index, text in enumerate(texts):
                values = vector(str(text), dimensions)
                embedding: object = (
                    base64.b64encode(values.tobytes()).decode() if as_base64 else values.tolist()
                )
                data.append({"object": "embedding", "index": index, "embedding": embedding})
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": request.get("model", "stub"),
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                },
            )

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


def serve(port: int, dimensions: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(dimensions))
    server.daemon_threads = True
    server.serve_forever()


@contextmanager
def running(dimensions: int = 384) -> Iterator[str]:
    """Start the stub as its own process on a free port; yields its base URL (…/v1)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.openai_stub", "--port", str(port), "--dimensions", str(dimensions)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        wait_until(lambda: port_open(port), "OpenAI stub", timeout=30, process=process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.openai_stub", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dimensions", type=int, default=384)
    args = parser.parse_args()
    serve(args.port, args.dimensions)


if __name__ == "__main__":
    main()
