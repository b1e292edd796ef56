"""CPU time and peak memory of processes, read from ``/proc``, for the benchmarks.

CPU time per item is the figure that survives a noisy machine (wall-clock
rates move with whatever else runs), so every benchmark that starts a
server or a worker reports it, the database server's included.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import proc_stat  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time so far of every PostgreSQL server process on this machine."""
    total = 0.0
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if "(postgres)" in stat.read(64):
                    total += cpu_seconds(pid)
        except (OSError, ValueError):
            continue
    return total


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process, or NaN when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
