"""6. Upload path memory: the API process's peak memory while 20 clients upload 50 MB files through
presigned URLs (the bytes go straight to the bucket), against a minimal endpoint that reads each
upload into memory as the original lesson does, and through Chute's proxied upload
(POST /v1/documents, streamed to the bucket part by part). Target: the lesson's endpoint grows at
least 20x more than Chute's API on the presigned path."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psutil

from bench.common import REPO, Context, Figure, Result, Table
from bench.ingest_run import Uploader
from bench.report import bar_chart
from infra.stack import free_port, wait_until

TARGET = 20.0
MB = 1_000_000


@dataclass
class Peak:
    idle_mb: float
    peak_mb: float
    seconds: float

    @property
    def growth_mb(self) -> float:
        return max(0.0, self.peak_mb - self.idle_mb)


class Sampler:
    """Samples a process's resident memory every 10 ms on a thread; keeps the maximum."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(ctx: Context) -> Result:
    result = Result("upload_memory", "6. Upload path: API memory while clients upload", ctx.smoke)
    clients, size = (2, 2 * MB) if ctx.smoke else (20, 50 * MB)
    data = (
        b"The lighthouse keeper logged every passing ship in a leather-bound ledger.\n" * (size // 75 + 1)
    )[:size]
    services = ctx.services
    _, key = services.create_key()
    peaks: dict[str, Peak] = {}
    with services.api() as api:
        uploader = Uploader(services.api_url, key)
        proxied = httpx.Client(
            base_url=services.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=600
        )
        try:
            uploader.send("warm.txt", data[:1000])
            _proxied_upload(proxied, "warm.txt", data[:1000])
            peaks["Chute API, presigned uploads"] = _measure(
                api, clients, lambda i: uploader.send(f"p{i}.txt", data)
            )
            peaks["Chute API, proxied POST /v1/documents"] = _measure(
                api, clients, lambda i: _proxied_upload(proxied, f"x{i}.txt", data)
            )
        finally:
            uploader.close()
            proxied.close()
    with _naive_app() as (naive, url), httpx.Client(base_url=url, timeout=600) as http:
        http.post("/upload", files={"file": ("warm.txt", data[:1000])}).raise_for_status()
        peaks["lesson endpoint: await file.read()"] = _measure(
            naive,
            clients,
            lambda i: http.post("/upload", files={"file": (f"n{i}.txt", data)}).raise_for_status(),
        )

    presigned = peaks["Chute API, presigned uploads"]
    proxied_peak = peaks["Chute API, proxied POST /v1/documents"]
    naive_peak = peaks["lesson endpoint: await file.read()"]
    ratio = naive_peak.growth_mb / max(presigned.growth_mb, 1.0)
    result.figures += [
        Figure("presigned: API memory growth", presigned.growth_mb, "MB"),
        Figure("proxied: API memory growth", proxied_peak.growth_mb, "MB"),
        Figure("lesson endpoint: memory growth", naive_peak.growth_mb, "MB"),
        Figure(
            "lesson growth / presigned growth",
            ratio,
            "x",
            target=f">= {TARGET:.0f}x",
            met=ratio >= TARGET,
        ),
        Figure(
            "lesson growth / proxied growth", naive_peak.growth_mb / max(proxied_peak.growth_mb, 1.0), "x"
        ),
    ]
    result.tables.append(
        Table(
            ["upload path", "idle RSS MB", "peak RSS MB", "growth MB", "growth per client MB", "seconds"],
            [
                [name, p.idle_mb, p.peak_mb, p.growth_mb, p.growth_mb / clients, p.seconds]
                for name, p in peaks.items()
            ],
            title=f"{clients} clients at once, {size / MB:.0f} MB each, {clients * size / MB:,.0f} MB in all",
        )
    )
    result.notes += [
        "Resident memory of the one server process, sampled every 10 ms; growth is peak less the idle "
        "figure taken after a warm-up request. Growth under 1 MB counts as 1 MB in the ratios.",
        "Presigned: each client presigns, POSTs its file to the bucket (SeaweedFS, another process) "
        "and completes; the API sees only JSON and a HEAD plus an 8 KiB ranged GET of each object. "
        "Proxied: the API streams each form into an S3 multipart upload, holding at most one 8 MiB part "
        "per upload. The lesson's endpoint holds every file whole.",
    ]
    result.plots.append(
        bar_chart(
            ctx.out / "upload_memory.png",
            ["presigned (Chute)", "proxied (Chute)", "read into memory"],
            [presigned.growth_mb, proxied_peak.growth_mb, naive_peak.growth_mb],
            title=f"Server memory growth, {clients} concurrent {size / MB:.0f} MB uploads",
            ylabel="MB above idle",
        )
    )
    return result


def _measure(process: psutil.Process, clients: int, send: Callable[[int], object]) -> Peak:
    time.sleep(0.5)  # let the last request's garbage go
    idle = process.memory_info().rss
    started = time.perf_counter()
    with Sampler(process) as sampler, ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(clients)))
    return Peak(idle / MB, max(sampler.peak, idle) / MB, time.perf_counter() - started)


def _proxied_upload(http: httpx.Client, name: str, data: bytes) -> None:
    http.post("/v1/documents", files={"file": (name, data, "text/plain")}).raise_for_status()


@contextmanager
def _naive_app() -> Iterator[tuple[psutil.Process, str]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.naive_upload_app:app",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, "naive app", process=process
        )
        yield psutil.Process(process.pid), url
    finally:
        process.terminate()
        process.wait(30)
