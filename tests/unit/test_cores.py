"""How many worker processes start by default: one per core the process may use, a container's CPU
quota counted (bench/results/REPORT.md section 2: the fastest arrangement measured)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.cores import available_cores, model_threads, worker_processes
from shared.settings import Settings

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", AFFINITY),  # no quota
        ("100000 100000\n", 1),  # --cpus 1
        ("150000 100000\n", min(AFFINITY, 2)),  # --cpus 1.5: rounded up
        ("5000 100000\n", 1),  # never below one
        ("6400000 100000\n", AFFINITY),  # a quota above the affinity: the affinity
    ],
)
def test_a_containers_cpu_quota_caps_the_cores(tmp_path: Path, cpu_max: str, expected: int) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)

    assert available_cores(quota) == expected


def test_without_a_cgroup_quota_file_the_affinity_counts(tmp_path: Path) -> None:
    assert available_cores(tmp_path / "absent") == AFFINITY


def test_one_worker_process_per_core_unless_set() -> None:
    assert worker_processes(Settings()) == available_cores()
    assert worker_processes(Settings(worker_concurrency=1)) == 1


def test_each_process_gets_its_share_of_the_cores_for_the_model() -> None:
    assert model_threads(Settings()) == 1
    assert model_threads(Settings(worker_concurrency=1)) == available_cores()
    assert model_threads(Settings(worker_concurrency=1, torch_threads=3)) == 3
