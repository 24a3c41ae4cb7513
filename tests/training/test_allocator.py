"""mer.training.allocator: with the mmap threshold fixed, freed activation-sized blocks leave the process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process: free one 16 MB block (glibc then raises its threshold to 16 MB), allocate 32 blocks of
# 4 MB, free all but the last (it pins the heap's top, so nothing can be trimmed) and print how much of the
# 124 MB freed is still resident.
SCRIPT = """
import sys, torch
from pathlib import Path
from mer.training import allocator

def rss_mb():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

configured = allocator.configure() if sys.argv[1] == "configure" else False
torch.ones(4 * 2**20)  # allocated and freed at once
blocks = [torch.ones(2**20) for _ in range(32)]
before = rss_mb()
del blocks[:-1]
print(configured, round(before - rss_mb()))
"""


def released_mb(mode: str, **env: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    configured, released = done.stdout.split()
    return configured, int(released)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's threshold is glibc's")
def test_freed_blocks_go_back_to_the_system_only_when_configured():
    configured, released = released_mb("configure")
    assert configured == "True" and released >= 120  # 31 blocks of 4 MB unmapped
    untouched, kept = released_mb("leave")
    assert untouched == "False" and kept <= 10  # glibc's default keeps them in the heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's threshold is glibc's")
def test_a_users_own_threshold_wins():
    configured, released = released_mb("configure", MALLOC_MMAP_THRESHOLD_="67108864")
    assert configured == "False" and released <= 10  # 64 MB: the 4 MB blocks stay in the heap, as asked
