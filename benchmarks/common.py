"""What every benchmark prints beside its figures: the machine, its load, its peak, and peak memory.

A CPU figure holds for one hardware class: with native bf16 (AVX512-BF16 or AMX) training runs
bf16, without it fp32 at roughly half the speed. Every benchmark therefore prints the CPU's
features and the class they put it in, and the step benchmark relates its FLOP/s to a GEMM
measured in the same run.

The training benchmarks (data_path, step, epoch, memory, loso) share the fold they measure, the paper's
scale and a few timing helpers, kept here too.

Scripts run as `python benchmarks/<name>.py`, so this module is imported as `common`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    import torch

PROJECT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "mer", "conf", ".gitignore"]


# the training benchmarks' fold and scale
SUBJECT = "sub01"  # the fold measured, as `stages/train.py --subject sub01`
SIZE = 224
BATCH = 32  # the paper's batch size
CLASSES = 5  # CASME II 5-class, as the official CASME2_5.py
CASME2 = {"clips": 255, "folds": 26, "epochs": 70, "train_clips": 245}

FEATURES = {"AVX2": "avx2", "AVX512": "avx512f", "AVX512-BF16": "avx512_bf16", "AMX": "amx_bf16"}


def cpu_flags() -> set[str]:
    flags = next(
        (line.split(":", 1)[1] for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")),
        "",
    )
    return set(flags.split())


def hardware_class() -> str:
    """The class a figure holds for: "GPU <name>", "bf16 CPU" or "fp32-only CPU"."""
    import torch  # here, not at the top: a benchmark's child process that never trains should not carry torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    flags = cpu_flags()
    return "bf16 CPU" if {"avx512_bf16", "amx_bf16"} & flags else "fp32-only CPU"


def cpu_features() -> str:
    """E.g. "AVX2 yes, AVX512 yes, AVX512-BF16 yes, AMX no -> bf16 CPU"."""
    flags = cpu_flags()
    listed = ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for name, flag in FEATURES.items())
    return f"CPU features: {listed} -> hardware class: {hardware_class()}"


def gemm_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best-of-`reps` GFLOP/s of an n x n matmul in `dtype` on this CPU's torch threads: the peak a step is
    measured against (a network step cannot beat the GEMM its convolutions and linears lower to)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(dtype) for _ in range(2))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def machine(packages: tuple[str, ...], extra: str = "") -> str:
    """Date, cores, CPU model, RAM, torch's CPU capability, Python, `packages`' versions and `extra`, the CPU's
    features and hardware class, then the load."""
    import torch

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}, nproc {os.cpu_count()}, {model}, {memory_gb:.0f} GB RAM, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, python {platform.python_version()}, "
        f"{versions}{extra}\n{cpu_features()}\n{load()}"
    )


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


def copy_project(path: Path) -> dict[str, str]:
    """A git + DVC repository at `path` holding this project's pipeline; returns the environment to run it in
    (this venv first on PATH, the copy's `mer` on PYTHONPATH)."""
    for name in PROJECT_FILES:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, path / name)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": str(path),
    }
    for args in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "b@example.com"],
        ["git", "config", "user.name", "bench"],
        ["dvc", "init", "-q"],
    ):
        run(args, path, env)
    return env


def run(args: list[str], cwd: Path, env: dict) -> float:
    """Seconds `args` took; raises with its output if it failed."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def run_with_peak(args: list[str], cwd: Path, env: dict, poll: float = 0.05) -> tuple[float, float, float]:
    """(seconds, peak RSS MB of the largest process, sum of every process's peak RSS MB) of `args` and the
    processes it starts (DVC -> stage script -> worker pool), polled from /proc every `poll` s."""
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=sink, stderr=subprocess.PIPE, text=True)
        peaks: dict[int, float] = {}
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            for proc in tree:
                peak = vmhwm_mb(proc.pid)
                if peak is not None:
                    peaks[proc.pid] = max(peaks.get(proc.pid, 0.0), peak)
            time.sleep(poll)
        _, stderr = process.communicate()
    if process.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{stderr}")
    return time.perf_counter() - start, max(peaks.values(), default=0.0), sum(peaks.values())


def timed(work: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of `work()`."""
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def best_ms(seconds: list[float], n: int) -> float:
    """Best of the repetitions, per sample, in ms: other processes only ever add time, and baseline
    and ours alternate, so the best of each is the fairest pair on a shared machine."""
    return 1e3 * min(seconds) / n


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside the block."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_and_send(send: Connection, function: Callable, args: tuple) -> None:
    try:
        send.send(("ok", function(*args)))
    except Exception as error:  # sent as text: inductor's exceptions need not pickle
        send.send(("error", f"{type(error).__name__}: {str(error).strip()[:300]}"))


def in_child(function: Callable, args: tuple, timeout: float | None = None) -> object:
    """function(*args) in a fresh spawned process: its own RSS, and a compile that can be killed.

    Raises TimeoutError (the child is killed) or RuntimeError (the child failed or died)."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_and_send, args=(send, function, args))
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            child.kill()
            raise TimeoutError(f"no result within {timeout:.0f} s")
        status, value = receive.recv()
    except EOFError:
        status, value = "error", "the child died without a result"
    finally:
        child.join()
    if status == "error":
        raise RuntimeError(value)
    return value


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
