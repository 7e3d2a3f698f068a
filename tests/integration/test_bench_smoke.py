"""The benchmarks' smoke mode: every benchmark runs at tiny sizes against its own real stack and the
report comes out with its sections, figures and charts. (The figures themselves are not checked:
timed tests prove nothing; the full run, `python -m bench`, is for people.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import ORDER
from bench.retrieval import DATA as RETRIEVAL_DATA

REPO = Path(__file__).resolve().parents[2]


def test_every_benchmark_runs_in_smoke_mode_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--work", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=720,
    )

    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = (out / "REPORT.md").read_text()
    assert "Smoke run" in report
    for name in ORDER:
        result = json.loads((out / f"{name}.json").read_text())
        assert result["smoke"] is True
        if name == "retrieval" and not RETRIEVAL_DATA.exists():  # CC BY-NC data, laid beside the repo
            assert "Skipped" in result["notes"][0] and f"## {result['title']}" in report
            continue
        if name == "scale" and result["notes"][0].startswith("Skipped"):
            # No network namespaces here (the isolated-hosts fault test skips for the same reason):
            # the note names the step that was refused.
            assert "cannot" in result["notes"][0] and f"## {result['title']}" in report
            continue
        assert result["figures"], f"{name} reported no figures"
        assert all(f["value"] == f["value"] for f in result["figures"]), f"{name} has a NaN figure"
        assert len(result["load_start"]) == 3 and len(result["load_end"]) == 3
        assert f"## {result['title']}" in report
        for plot in result["plots"]:
            assert (out / plot).stat().st_size > 1000, plot
            assert f"]({plot})" in report
