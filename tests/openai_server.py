"""An OpenAI-compatible embeddings server for tests, with faults on demand.

`POST /v1/embeddings` answers like OpenAI (deterministic unit vectors), unless a scripted fault is
waiting: `POST /_script` with a list of faults, each used by one request in order:
    {"status": 429, "retry_after": 2}   {"status": 500}   {"status": 401}
    {"delay": 5}  (answer late: a client timeout)   {"dimensions": 10}  (vectors of the wrong size)
`GET /_log` lists every embeddings request: its time and what it was answered.

    python -m tests.openai_server --port 8089 --dimensions 384
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.openai_stub import embeddings


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, dimensions: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.dimensions = dimensions
        self.lock = threading.Lock()
        self.script: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []

    def next_fault(self) -> dict[str, Any]:
        with self.lock:
            return self.script.pop(0) if self.script else {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

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
        if "delay" in fault:
            time.sleep(fault["delay"])
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.openai_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dimensions", type=int, default=384)
    args = parser.parse_args()
    FaultServer(args.port, args.dimensions).serve_forever()


if __name__ == "__main__":
    main()
