"""The C allocator of a training process: activation memory freed by a step goes back to the system.

A training step allocates its activations and frees them in backward (~1.7 GB at the paper's scale, bf16,
batch 32). glibc's malloc serves a block of at least its mmap threshold with mmap and unmaps it on free, but by
default it raises that threshold to the size of each such block freed (up to 32 MB), so after the first steps
blocks below 32 MB come from the heap arenas, which keep what is freed resident and fragment: a paper fold at
CASME II's size held 1.78 GB after its first step and 2.65 GB after its seventh, and peaked at 3.53 GB against
2.82 GB with a fixed threshold (benchmarks/README.md, "Peak RSS"). `configure` fixes the threshold (mallopt
M_MMAP_THRESHOLD, which also turns the raising off), so every block of 128 KB or more is unmapped when freed.
The price: those blocks are mapped afresh each step, ~0.6 M more page faults and ~1 s more system CPU time
per batch-32 step (~8% of its CPU time). Where blocks live does not change what is computed: fold outputs
are byte-identical with and without it.

glibc only (Linux); elsewhere, or when the user set MALLOC_MMAP_THRESHOLD_ themselves, it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024  # glibc's initial threshold, kept fixed
ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"  # glibc's own variable: a user's setting wins


def configure() -> bool:
    """Fix glibc's mmap threshold for this process; whether it did."""
    if platform.libc_ver()[0] != "glibc" or ENVIRONMENT in os.environ:
        return False
    return bool(ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
