"""Run the benchmarks and write the report: `python -m bench [--smoke] [--only NAME ...]`.

Full run (about 15 minutes on 2 cores): results and charts go to bench/results/. Smoke run (tiny
sizes, about a minute; the test suite runs it): results go to bench/.smoke-results/ unless --out
says otherwise. Each benchmark saves `<name>.json`; REPORT.md is rebuilt from all of them, so
`--only NAME` refreshes one section and keeps the others.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REPO, Context, Result, cpu_shares, cpu_times, loadavg
from bench.report import ORDER, write_report
from bench.services import Services
from shared.pipeline.environment import configure_library_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves every benchmark works")
    parser.add_argument("--only", action="append", choices=ORDER, help="run this benchmark (repeatable)")
    parser.add_argument("--out", type=Path, help="results folder (default: bench/results)")
    parser.add_argument("--work", type=Path, help="scratch folder for the corpus and the stack")
    args = parser.parse_args(argv)
    configure_library_environment()  # benchmarks load the model and extract in this process
    out: Path = args.out or REPO / "bench" / (".smoke-results" if args.smoke else "results")
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or ORDER
    work = args.work or Path(tempfile.mkdtemp(prefix="chute-bench-"))
    services = Services(work / "stack")
    ctx = Context(out=out, work=work, smoke=args.smoke, services=services)
    failed: list[str] = []
    try:
        for name in names:
            print(f"[bench] {name} ...", flush=True)
            try:
                result = _run_one(name, ctx)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            path = result.save(out)
            figures = "; ".join(f"{f.label} {f.shown()}" for f in result.figures)
            print(f"[bench] {name}: {result.seconds:.0f} s: {figures} -> {path}", flush=True)
    finally:
        services.close()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report = write_report(out)
    print(f"[bench] report: {report}", flush=True)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _run_one(name: str, ctx: Context) -> Result:
    module = importlib.import_module(f"bench.{name}")
    load_start, cpu_start = loadavg(), cpu_times()
    started = time.perf_counter()
    result: Result = module.run(ctx)
    result.seconds = time.perf_counter() - started
    result.load_start = load_start
    result.load_end = loadavg()
    result.cpu = cpu_shares(cpu_start, cpu_times())
    result.finished_at = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return result


if __name__ == "__main__":
    sys.exit(main())
