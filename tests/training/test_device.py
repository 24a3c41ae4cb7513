"""mer.training.device: the one choice of device, precision, pinned memory and threads (its CPU path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mer.training import device

ROOT = Path(__file__).resolve().parents[2]


def allowed_cpus() -> int:
    """The kernel's own count of the CPUs this process may use (/proc/self/status), e.g. `0-1,4`."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("Cpus_allowed_list"))
    spans = [part.split("-") for part in line.split(":")[1].strip().split(",")]
    return sum(int(span[-1]) - int(span[0]) + 1 for span in spans)


@pytest.fixture
def restored(monkeypatch):
    """choose() sets torch's threads and the OpenMP/MKL variables: both are put back after the test."""
    for name in device.THREAD_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, ""))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_number_of_threads_is_set_for_torch_and_the_environment(restored):
    chosen = device.choose("fp32", 1)
    assert chosen == device.Device(torch.device("cpu"), "fp32", pin_memory=False, threads=1)
    assert str(chosen) == "cpu, fp32, 1 thread"
    assert torch.get_num_threads() == 1
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"


def test_auto_is_every_allowed_core_whatever_the_environment_says():
    """In a fresh process told OMP_NUM_THREADS=1 (as Ray tells its workers): `auto` still means every core, and
    the processes the fold starts inherit that count."""
    script = (
        "import os, subprocess, sys, torch\n"
        "from mer.training.device import choose\n"
        "chosen = choose('fp32', 'auto')\n"
        "child = subprocess.run([sys.executable, '-c', 'import torch; print(torch.get_num_threads())'],"
        " capture_output=True, text=True, check=True).stdout.strip()\n"
        "print(chosen.threads, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], child, chosen)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    cores = allowed_cpus()
    plural = "s" if cores != 1 else ""
    assert done.stdout.split(maxsplit=4) == [str(cores)] * 4 + [f"cpu, fp32, {cores} thread{plural}\n"]


@pytest.mark.parametrize("bad", [0, -2, "two", 1.5, True, None])
def test_a_bad_thread_count_is_refused(bad):
    with pytest.raises(ValueError, match=f"train.threads must be 'auto' or a positive number, got {bad!r}"):
        device.resolve_threads(bad)


def test_auto_precision_is_bf16_only_on_native_bf16(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(device, "native_bf16", lambda _: True)
    assert device.resolve_precision("auto", cpu) == "bf16" and device.resolve_precision("auto", cuda) == "bf16"
    monkeypatch.setattr(device, "native_bf16", lambda _: False)
    assert device.resolve_precision("auto", cpu) == "fp32" and device.resolve_precision("auto", cuda) == "fp16"
    assert device.resolve_precision("bf16", cpu) == "bf16" and device.resolve_precision("fp32", cuda) == "fp32"
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        device.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="train.precision must be one of"):
        device.resolve_precision("half", cpu)


def test_auto_precision_follows_this_cpu(restored):
    """On this CPU-only machine: bf16 exactly where the CPU reports avx512_bf16 or AMX (read from /proc/cpuinfo)."""
    flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags")).split()
    native = "avx512_bf16" in flags or "amx_tile" in flags
    assert device.choose("auto", 1).precision == ("bf16" if native else "fp32")
