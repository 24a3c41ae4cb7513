"""Where and how a model computes: device, precision, pinned memory and thread count, chosen in one place.

The fold stage, `mer predict` and the `attention` stage all call `choose`, so they cannot disagree
about the device or the precision a model was trained in. The thread count is part of a fold's result
(a float sum split over more threads rounds differently), so it comes from a param (`train.threads`),
never from the environment: `choose` sets torch's intra-op threads and the OpenMP/MKL environment of
the process (inherited by anything it starts) to that number, whatever `OMP_NUM_THREADS` the shell or
Ray set. `auto` is every core this process may run on (its CPU affinity), so an `auto` fold depends on
the machine's core count; a number does not.

`choose` also fixes the C allocator's mmap threshold for the process (mer.training.allocator), so the
activations a step frees go back to the system instead of staying resident.

The CUDA branch (device `cuda` when torch sees a GPU, pinned host memory for asynchronous copies, fp16
AMP where bf16 is not native) cannot be run on this project's CPU-only test machine; it is kept to
these few lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from mer.training import allocator

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # what OpenMP and MKL read in processes started after


@dataclass(frozen=True)
class Device:
    device: torch.device
    precision: str  # fp32 | bf16 | fp16: the resolved one, recorded in a fold's curves.json
    pin_memory: bool  # host tensors bound for the device go through pinned memory (CUDA only)
    threads: int  # torch's intra-op threads in this process

    def __str__(self) -> str:
        return f"{self.device.type}, {self.precision}, {self.threads} thread{'s' if self.threads != 1 else ''}"


def choose(precision: str = "auto", threads: int | str = "auto") -> Device:
    """The device (CUDA when torch sees one, else CPU), the precision (see resolve_precision) and the
    thread count (see resolve_threads), which it sets for this process, as it sets the allocator's threshold."""
    allocator.configure()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    count = resolve_threads(threads)
    set_threads(count)
    return Device(device, resolve_precision(precision, device), device.type == "cuda", count)


def cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit, not the host's)."""
    return len(os.sched_getaffinity(0))


def resolve_threads(threads: int | str) -> int:
    """`auto`: every core this process may run on; a positive number: that many."""
    if threads == "auto":
        return cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"train.threads must be 'auto' or a positive number, got {threads!r}")
    return threads


def set_threads(count: int) -> None:
    """torch's intra-op threads and the OpenMP/MKL environment of this process (and the processes it starts)."""
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(count)))
    torch.set_num_threads(count)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware; elsewhere bf16 autocast would run emulated in software."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def check_precision(precision: str) -> None:
    """A clear error for a `train.precision` that is none of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {PRECISIONS}, got {precision!r}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run uses: `auto` is bf16 autocast where `device` has native bf16, fp16 AMP on
    other CUDA devices, fp32 elsewhere."""
    check_precision(precision)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "train.precision fp16 needs a CUDA device (CPU autocast has no fp16 GradScaler path); "
            "use bf16, fp32 or auto"
        )
    if precision != "auto":
        return precision
    if native_bf16(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "fp32"
