"""mer.training.allocator: with its thresholds fixed, large freed blocks leave the process and a small model's
step-sized blocks are reused without page faults."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process: free one 16 MB block (glibc then raises its threshold to 16 MB), allocate 16 blocks of
# 8 MB, free all but the last (it pins the heap's top, so nothing can be trimmed) and print how much of the
# 120 MB freed left the process.
SCRIPT = """
import sys, torch
from pathlib import Path
from mer.training import allocator

def rss_mb():
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

configured = allocator.configure() if sys.argv[1] == "configure" else False
torch.ones(4 * 2**20)  # allocated and freed at once
blocks = [torch.ones(2 * 2**20) for _ in range(16)]
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
    assert configured == "True" and released >= 110  # 15 blocks of 8 MB unmapped
    untouched, kept = released_mb("leave")
    assert untouched == "False" and kept <= 10  # glibc's default keeps them in the heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's threshold is glibc's")
def test_a_users_own_threshold_wins():
    configured, released = released_mb("configure", MALLOC_MMAP_THRESHOLD_="67108864")
    assert configured == "False" and released <= 10  # 64 MB: the 8 MB blocks stay in the heap, as asked


# A small model's step (STSTNet at batch 32: ~2 MB activations): allocate ten 2 MB blocks and free them, 50 times
# after a warm-up; print the minor page faults per round. Mapped afresh each round, each block faults ~500 pages.
STEPS = """
import ctypes, resource, sys, torch
from mer.training import allocator

if sys.argv[1] == "configure":
    allocator.configure()
else:  # the threshold at 128 KB (glibc's initial one), kept fixed: every block here is then mapped afresh
    ctypes.CDLL(None).mallopt(allocator.M_MMAP_THRESHOLD, 128 * 1024)
def round_():
    blocks = [torch.ones(2**19) for _ in range(10)]
    del blocks
for _ in range(5):
    round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    round_()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
"""


def faults_per_round(mode: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's thresholds are glibc's")
def test_a_small_models_blocks_are_reused_without_page_faults():
    assert faults_per_round("configure") < 50  # ~0: the heap keeps them for the next round
    assert faults_per_round("128k") > 2000  # 10 x 2 MB mapped and zeroed afresh: ~5,000 pages
