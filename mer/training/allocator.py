"""The C allocator of a training process: activation memory freed by a step goes back to the system.

A training step allocates its activations and frees them in backward (~1.7 GB at the paper's scale, bf16,
batch 32). glibc's malloc serves a block of at least its mmap threshold with mmap and unmaps it on free, but by
default it raises that threshold to the size of each such block freed (up to 32 MB), so after the first steps
blocks below 32 MB come from the heap arenas, which keep what is freed resident and fragment: a paper fold at
CASME II's size held 1.78 GB after its first step and 2.65 GB after its seventh, and peaked at 3.53 GB against
2.82 GB with a fixed threshold (benchmarks/README.md, "Peak RSS"). `configure` fixes the threshold (mallopt
M_MMAP_THRESHOLD, which also turns the raising off) at 4 MB, so every block of 4 MB or more is unmapped
when freed: a paper fold peaks at ~2.86 GB, as with 128 KB or 1 MB (benchmarks/README.md). Not lower:
the blocks of a small model's step (STSTNet: ~2 MB activations at batch 32) would then be mapped and
zeroed afresh at every step, ~2,500 page faults and ~4.5 ms of system time in a ~5 ms step (measured at
128 KB), a step twice as long. For the same reason it raises glibc's trim threshold (M_TRIM_THRESHOLD, by
default twice the mmap threshold) to 64 MB, so the heap keeps up to that much free memory at its top for
the next step instead of returning it and faulting it back in: a small model's step then runs without page
faults. The price for a large model: its 4 MB-and-larger blocks are mapped afresh each step, ~0.6 M more
page faults and ~1 s more system CPU time per batch-32 paper step (~8% of its CPU time). Where blocks live
does not change what is computed: fold outputs are byte-identical with and without it.

glibc only (Linux); elsewhere, or when the user set MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_
themselves, it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 4 * 2**20  # blocks this large or larger are unmapped when freed
TRIM_THRESHOLD = 64 * 2**20  # free memory the heap keeps at its top for the next step
ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's own variables: a user's setting wins


def configure() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; whether it did."""
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in ENVIRONMENT):
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
