"""What every benchmark prints beside its figures: the machine, its load, and peak memory.

Scripts run as `python benchmarks/<name>.py`, so this module is imported as `common`.
"""
from __future__ import annotations

import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch


def machine(packages: tuple[str, ...], extra: str = "") -> str:
    """Date, cores, CPU model, RAM, torch's CPU capability, Python, `packages`' versions and `extra`, then the load."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, nproc {os.cpu_count()}, {model}, {memory_gb:.0f} GB RAM, "
            f"CPU capability {torch.backends.cpu.get_cpu_capability()}, python {platform.python_version()}, "
            f"{versions}{extra}\n{load()}")


def load() -> str:
    """Timings are wall clock: a busy machine inflates them, so print what else was running."""
    return "load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def vmhwm_mb(pid: int | str = "self") -> float | None:
    """A process's peak RSS so far (VmHWM); None once it has exited. Not ru_maxrss: Linux carries
    that across fork + exec, so a spawned child would report its parent's peak."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    line = next((line for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return None if line is None else int(line.split()[1]) / 1024


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
