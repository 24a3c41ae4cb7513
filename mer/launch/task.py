"""One fold as a task: clone the head's snapshot into a temporary folder, check its inputs out of the shared DVC
cache, `dvc repro --single-item <fold>` there, remove the clone. The fold's outputs and run-cache entry land in the
shared cache, from which the head's `dvc repro` restores them. Runs in a thread of LocalPool or in a Ray worker."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvc.config import Config

from mer.launch.workspace import Fold, dvc_executable


@dataclass(frozen=True)
class FoldRun:
    stage: str
    host: str
    returncode: int
    seconds: float
    log: str
    ran: list[str]  # stages the clone's `dvc repro` ran (only the fold, when upstream came from the cache)
    setup_seconds: float = 0.0  # clone + dvc checkout of the inputs: the per-task cost of running elsewhere


def run_fold(fold: Fold, settings: dict, events: Any, gpu: str | None = None) -> FoldRun:
    """A task (a Ray task, or a thread of LocalPool with its `gpu`): clone the head's snapshot to a temporary
    folder, check out the fold's inputs from the cache, `dvc repro --single-item <stage>` there (the head brought
    upstream up to date), remove the clone."""
    stage, host = fold.stage, socket.gethostname()
    events.put((stage, host))
    start = time.perf_counter()
    clone = Path(tempfile.mkdtemp(prefix="mer-launch-"))
    try:
        _prepare_clone(clone, settings)
        log = ""
        if fold.inputs:
            log += interruptible([dvc_executable(), "checkout", *fold.inputs], clone, check=True).stdout
        setup = time.perf_counter() - start
        done = interruptible(
            [dvc_executable(), "repro", "--single-item", stage], clone, threads=settings["threads"], gpu=gpu
        )
        log += done.stdout
        ran = [line.split("'")[1] for line in done.stdout.splitlines() if line.startswith("Running stage")]
        return FoldRun(stage, host, done.returncode, time.perf_counter() - start, log, ran, setup)
    except subprocess.CalledProcessError as error:
        return FoldRun(
            stage,
            host,
            error.returncode or 1,
            time.perf_counter() - start,
            f"{' '.join(error.cmd)} failed:\n{error.stdout}",
            [],
        )
    finally:
        shutil.rmtree(clone, ignore_errors=True)


def _prepare_clone(clone: Path, settings: dict) -> None:
    """A git clone of the snapshot sharing the head's objects, with its dvc.lock, DVC config and cache (set through
    DVC's config API, as `dvc cache dir --local` does, without starting a `dvc` process per task)."""
    steps = [
        ["git", "clone", "-q", "--shared", "--no-checkout", settings["head"], str(clone)],
        ["git", "-C", str(clone), "checkout", "-q", "--detach", settings["commit"]],
    ]
    for step in steps:
        subprocess.run(step, capture_output=True, text=True, check=True)
    if settings["lock"] is not None:
        (clone / "dvc.lock").write_text(settings["lock"])
    if settings["config_local"] is not None:
        (clone / ".dvc" / "config.local").write_text(settings["config_local"])
    with Config(dvc_dir=str(clone / ".dvc")).edit("local") as config:
        config["cache"]["dir"] = settings["cache"]


class Children:
    """The process groups this process's fold threads started, so an interrupt stops them (LocalPool; in a Ray task
    Ray's cancel interrupts the task, and `interruptible` stops its group itself)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[subprocess.Popen] = set()
        self.stopping = False

    def add(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.running.add(process)
            if self.stopping:
                _stop_group(process)

    def discard(self, process: subprocess.Popen) -> None:
        with self.lock:
            self.running.discard(process)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for process in self.running:
                _stop_group(process)


CHILDREN = Children()


def _stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)


def interruptible(
    args: list[str], cwd: Path, check: bool = False, threads: str | None = None, gpu: str | None = None
) -> subprocess.CompletedProcess:
    """Run `args` in its own process group, so a cancelled task stops the stage's processes too.

    `threads`: the budget, as OMP_NUM_THREADS for what runs before the fold (DVC); the fold itself sets
    its threads from `train.threads` (mer.training.device), which the budget made equal to it.
    `gpu`: the one CUDA device the stage may see (LocalPool's; Ray sets CUDA_VISIBLE_DEVICES itself)."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env.update({"DVC_NO_ANALYTICS": "1"} | ({"OMP_NUM_THREADS": threads} if threads else {}))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    process = subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env
    )
    CHILDREN.add(process)
    try:
        stdout, _ = process.communicate()
    except BaseException:
        _stop_group(process)
        process.wait()
        raise
    finally:
        CHILDREN.discard(process)
    if check and process.returncode:
        raise subprocess.CalledProcessError(process.returncode, args, stdout)
    return subprocess.CompletedProcess(args, process.returncode, stdout)
