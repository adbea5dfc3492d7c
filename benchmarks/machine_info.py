"""The machine a benchmark runs on: CPU count and model, memory, OS and load.

Every benchmark prints this next to its numbers, because times depend on the
machine and on what else it runs.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict:
    """Return nproc, CPU model, memory, OS and load average (1, 5, 15 min) of this machine."""
    cpu, memory = platform.processor() or "unknown CPU", "unknown memory"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": memory, "platform": platform.platform(),
            "load_average": os.getloadavg()}


def describe(info: dict | None = None) -> str:
    """Return one line such as ``2 CPUs (nproc), AMD EPYC, 24 GiB``."""
    info = info or machine()
    return f"{info['nproc']} CPUs (nproc), {info['cpu']}, {info['memory']}"
