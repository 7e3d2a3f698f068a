"""How many cores this process may use, and how many worker processes share them.

`available_cores` counts what the scheduler allows: the process's CPU affinity, capped by a cgroup v2
CPU quota (`cpu.max`, which a container's `--cpus` sets), so a worker in a 2-CPU container on a
64-core host starts 2 processes, not 64 (`os.cpu_count()` counts the host's).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from shared.settings import Settings

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its affinity, capped by the cgroup's quota (rounded up)."""
    cores = len(os.sched_getaffinity(0)) or 1
    try:
        quota, period = cpu_max.read_text().split()
    except (OSError, ValueError):
        return cores  # no cgroup v2 quota file here
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def worker_processes(settings: Settings) -> int:
    """CHUTE_WORKER_CONCURRENCY, else one process per available core: the fastest arrangement
    measured with the local model (bench/results/REPORT.md, section 2), each process with its own
    model and extraction process (about 470 MiB each on the bench corpus)."""
    return settings.worker_concurrency or available_cores()


def model_threads(settings: Settings) -> int:
    """CHUTE_TORCH_THREADS, else a worker's cores shared out among its processes: the model runs
    faster as two one-thread processes than as one two-thread process (bench/results/REPORT.md)."""
    return settings.torch_threads or max(1, available_cores() // worker_processes(settings))
