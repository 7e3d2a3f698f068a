"""Measure the embedding server on a GPU in one call: chunks/s of ~1,000-character real-text chunks
through HTTP at several batch settings, and the rates without HTTP that tell what limits it.

Reads `.gpu/` (made here by `python -m bench.gpu.prepare`); imports only what the GPU image has plus
the carried wheels. Prints a table and writes `<out>/gpu_embedding_server.json`.

    python -m bench.gpu.run --out "$OUT"                      # on the GPU (device cuda)
    python -m bench.gpu.run --device cpu --count 64 --quick   # here, to prove it works

Without HTTP, on the same chunks: plain sentence-transformers `encode` (issue 13's baseline), the
tokenizer alone (texts/s), and the server's model path alone (pre-tokenised, length-sorted
token-budget batches). Through HTTP, for each max-tokens-per-batch setting, one server and 4/16/64
concurrent clients (spread over client processes) sending requests of 64 chunks: chunks/s, the
server's mean batch, queue wait, padding, the model thread's busy share, and the server process's CPU
(a share near 100 % of one core means Python in the server, not the GPU, is the limit).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / ".gpu"
MODEL = "all-MiniLM-L6-v2"
PER_REQUEST = 64


def load_chunks(count: int) -> list[str]:
    with gzip.open(FOLDER / "chunks.jsonl.gz", "rt", encoding="utf-8") as lines:
        chunks = [json.loads(line) for line in lines]
    return chunks[:count]


def server_settings(device: str, max_batch_tokens: int) -> dict[str, str]:
    return {
        "CHUTE_EMBEDDING_SERVER_DEVICE": device,
        "CHUTE_EMBEDDING_SERVER_MODEL_PATH": str(FOLDER / "model"),
        "CHUTE_EMBEDDING_SERVER_MAX_BATCH_TOKENS": str(max_batch_tokens),
        "CHUTE_EMBEDDING_RUNTIME": "torch",  # on the CPU (a trial run): torch reads the fp16 folder
    }


# -- without HTTP ----------------------------------------------------------------------------------


def raw_rates(chunks: list[str], device: str, budgets: list[int]) -> dict[str, Any]:
    """Plain sentence-transformers, the tokenizer alone, and the server's model path alone."""
    os.environ.update(server_settings(device, budgets[0]))
    import numpy as np

    from shared.embedding_server.batching import Text, pad, plan_batches
    from shared.embedding_server.model import load_model
    from shared.settings import Settings

    loaded = load_model(Settings())
    model = getattr(loaded.model, "model", None)
    rates: dict[str, Any] = {"device_name": device_name(device), "runtime": loaded.model.runtime}
    if model is not None:
        model.encode(chunks[:256], batch_size=256)
        started = time.perf_counter()
        model.encode(chunks, batch_size=256, convert_to_numpy=True)
        rates["sentence_transformers_encode_per_s"] = len(chunks) / (time.perf_counter() - started)

    started = time.perf_counter()
    tokenised = loaded.tokenizer.encode(chunks)
    rates["tokenizer_texts_per_s"] = len(chunks) / (time.perf_counter() - started)
    rates["tokens_per_text"] = sum(len(ids) for ids in tokenised) / len(tokenised)

    texts = [Text(ids, None, row) for row, ids in enumerate(tokenised)]
    if device == "cuda":  # the CUDA fp16 vectors against fp32 on the CPU, same weights
        from shared.embedding_server.model import TorchModel

        sample = plan_batches(texts[:64], 64 * 256)[0]
        fast = loaded.model.run(*pad(sample))
        exact = TorchModel(loaded.folder, device="cpu").run(*pad(sample))
        cosines = np.sum(fast * exact, axis=1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(exact, axis=1)
        rates["cuda_fp16_vs_cpu_fp32_min_cosine"] = float(cosines.min())
    for budget in budgets:
        batches = plan_batches(texts, budget)
        for batch in batches[:2]:  # warm-up: kernels for these shapes
            loaded.model.run(*pad(batch))
        started = time.perf_counter()
        for batch in batches:
            np.asarray(loaded.model.run(*pad(batch)))
        rates[f"model_per_s@{budget}"] = len(texts) / (time.perf_counter() - started)
    return rates


def device_name(device: str) -> str:
    import torch

    return str(torch.cuda.get_device_name(0)) if device == "cuda" else "cpu"


# -- through HTTP ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(device: str, max_batch_tokens: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        **server_settings(device, max_batch_tokens),
        "CHUTE_EMBEDDING_SERVER_PORT": str(port),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.embedding_server"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server did not start; see {log}")


def client_process(url: str, requests: list[list[str]], threads: int, start: Any) -> None:
    """One client process: `threads` threads sending its share of requests back to back."""

    def send(share: list[list[str]]) -> None:
        with httpx.Client(timeout=600) as http:
            for texts in share:
                body = {"model": MODEL, "input": texts, "encoding_format": "base64"}
                http.post(f"{url}/v1/embeddings", json=body).raise_for_status()

    start.wait()
    workers = [threading.Thread(target=send, args=(requests[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def server_metrics(url: str) -> dict[str, float]:
    """The server's counters and histogram sums and counts, by name without the common prefix."""
    prefix = "chute_embedding_server_"
    values = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(prefix) and "{" not in line:
            name, value = line[len(prefix) :].split()
            values[name] = float(value)
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_http(url: str, pid: int, chunks: list[str], clients: int) -> dict[str, float]:
    requests = [chunks[i : i + PER_REQUEST] for i in range(0, len(chunks), PER_REQUEST)]
    processes = min(clients, max(1, (os.cpu_count() or 2) // 2), 8)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    shares = [requests[i::processes] for i in range(processes)]
    threads = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    workers = [
        context.Process(target=client_process, args=(url, share, count, start))
        for share, count in zip(shares, threads, strict=True)
    ]
    for worker in workers:
        worker.start()
    time.sleep(3.0)  # client processes up (httpx imported) and waiting
    before, cpu_before = server_metrics(url), cpu_seconds(pid)
    started = time.perf_counter()
    start.set()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    after, cpu_after = server_metrics(url), cpu_seconds(pid)
    if any(worker.exitcode for worker in workers):
        raise RuntimeError("a client process failed")

    def delta(name: str) -> float:
        return after[name] - before[name]

    return {
        "clients": clients,
        "client_processes": processes,
        "chunks_per_s": len(chunks) / seconds,
        "mean_batch": delta("batch_texts_sum") / max(1.0, delta("batch_texts_count")),
        "mean_queue_wait_ms": 1000
        * delta("queue_wait_seconds_sum")
        / max(1.0, delta("queue_wait_seconds_count")),
        "padding_ratio": delta("padded_tokens_total") / max(1.0, delta("tokens_total")),
        "model_busy_share": delta("batch_seconds_sum") / seconds,
        "server_cpu_cores": (cpu_after - cpu_before) / seconds,
        "tokens_per_s": delta("tokens_total") / seconds,
    }


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.run", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where the JSON and the server log go")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--count", type=int, default=20_000, help="chunks per measurement")
    parser.add_argument("--quick", action="store_true", help="one setting, 1 and 4 clients (a trial run)")
    parser.add_argument("--budgets", type=int, nargs="+", help="max tokens per batch to measure")
    parser.add_argument("--clients", type=int, nargs="+", help="concurrent clients to measure")
    args = parser.parse_args()
    budgets = args.budgets or ([4096] if args.quick else [16_384, 65_536, 131_072])
    concurrency = args.clients or ([1, 4] if args.quick else [4, 16, 64])
    chunks = load_chunks(args.count)
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "gpu_server.log"

    report: dict[str, Any] = {"chunks": len(chunks), "per_request": PER_REQUEST, "cpus": os.cpu_count()}
    started = time.perf_counter()
    saved = args.out / "gpu_embedding_server.json"
    report["raw"] = raw_rates(chunks, args.device, budgets)
    report["http"] = []
    print(json.dumps(report["raw"], indent=1), flush=True)
    for budget in budgets:
        process, url = start_server(args.device, budget, log)
        try:
            for clients in concurrency:
                row = {"max_batch_tokens": budget, **through_http(url, process.pid, chunks, clients)}
                report["http"].append(row)
                print(json.dumps(row), flush=True)
                saved.write_text(json.dumps(report, indent=2) + "\n")  # kept should a later step fail
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    report["seconds"] = time.perf_counter() - started
    saved.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)


def print_table(report: dict[str, Any]) -> None:
    raw = report["raw"]
    print(
        f"\n{raw['device_name']} ({raw['runtime']}), {report['chunks']} chunks, "
        f"{raw['tokens_per_text']:.0f} tokens each on average"
    )
    for name, value in raw.items():
        if name.endswith("per_s") or "per_s@" in name:
            print(f"  without HTTP  {name:<40} {value:>10,.0f}")
    if "cuda_fp16_vs_cpu_fp32_min_cosine" in raw:
        print(f"  CUDA fp16 against CPU fp32: min cosine {raw['cuda_fp16_vs_cpu_fp32_min_cosine']:.5f}")
    headers = ["max tokens", "clients", "chunks/s", "batch", "wait ms", "padding", "model busy", "server CPU"]
    print("  " + " | ".join(headers))
    for row in report["http"]:
        print(
            f"  {row['max_batch_tokens']:>10} | {row['clients']:>7} | {row['chunks_per_s']:>8,.0f} | "
            f"{row['mean_batch']:>5.0f} | {row['mean_queue_wait_ms']:>7.1f} | {row['padding_ratio']:>7.2f} | "
            f"{row['model_busy_share']:>10.0%} | {row['server_cpu_cores']:>10.2f}"
        )


if __name__ == "__main__":
    main()
