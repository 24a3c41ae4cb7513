"""One fold as a task: `dvc repro --single-item <fold>` in a clone of the head's snapshot (its own, or its
LocalPool slot's) whose inputs are checked out of the shared DVC cache. The fold's outputs and run-cache entry land
in the shared cache, from which the head restores them (mer/launch/restore.py). Runs in a thread of LocalPool or in
a Ray worker."""

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
    setup_seconds: float = 0.0  # clone (a slot's first fold) + dvc checkout of new inputs: the cost of a task


def run_fold(fold: Fold, settings: dict, events: Any, slot: Slot | None = None) -> FoldRun:
    """A task (a Ray task, or a thread of LocalPool with its `slot`): `dvc repro --single-item <stage>` in a clone
    of the head's snapshot whose inputs are checked out (the head brought upstream up to date). Without a `slot`
    (or at its first fold) the clone is made here; without a `slot` it is removed after the fold."""
    stage, host = fold.stage, socket.gethostname()
    events.put((stage, host))
    start = time.perf_counter()
    keep = slot is not None
    slot = slot or Slot()
    try:
        if slot.clone is None:
            slot.clone = Clone(settings)
        log = slot.clone.check_out(fold.inputs)
        setup = time.perf_counter() - start
        done = interruptible(
            [dvc_executable(), "repro", "--single-item", stage], slot.clone.path, settings["threads"], slot.gpu
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
        if not keep and slot.clone is not None:
            slot.clone.remove()


@dataclass
class Slot:
    """Where LocalPool runs one fold at a time: the CUDA device its folds see (None: no GPU, or Ray chooses) and
    the clone they share, made at its first fold."""

    gpu: str | None = None
    clone: Clone | None = None


class Clone:
    """A git clone of the head's snapshot in a temporary folder, sharing the head's git objects and DVC cache, for
    one fold (a Ray task) or one after another (a LocalPool slot: the clone, its DVC start-up files and the inputs
    the folds share are then made once, ~1 s a fold saved).

    Its dvc.lock holds only the entries of the stages that write the folds' inputs: enough for `dvc checkout`
    of them, and DVC rewrites the whole lock after each stage it runs (~0.4 s for the default run's 3,100-line lock)."""

    def __init__(self, settings: dict) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="mer-launch-"))
        self.checked_out: set[str] = set()
        try:
            steps = [
                ["git", "clone", "-q", "--shared", "--no-checkout", settings["head"], str(self.path)],
                ["git", "-C", str(self.path), "checkout", "-q", "--detach", settings["commit"]],
            ]
            for step in steps:
                subprocess.run(step, capture_output=True, text=True, check=True)
            if settings["lock"] is not None:
                (self.path / "dvc.lock").write_text(settings["lock"])
            if settings["config_local"] is not None:
                (self.path / ".dvc" / "config.local").write_text(settings["config_local"])
            # the head's cache, set as `dvc cache dir --local` does, without starting a `dvc` process
            with Config(dvc_dir=str(self.path / ".dvc")).edit("local") as config:
                config["cache"]["dir"] = settings["cache"]
        except BaseException:
            self.remove()
            raise

    def check_out(self, inputs: tuple[str, ...]) -> str:
        """`dvc checkout` of the `inputs` not yet checked out here; its output."""
        missing = [path for path in inputs if path not in self.checked_out]
        if not missing:
            return ""
        done = interruptible([dvc_executable(), "checkout", *missing], self.path, check=True)
        self.checked_out.update(missing)
        return done.stdout

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


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
    args: list[str], cwd: Path, threads: str | None = None, gpu: str | None = None, check: bool = False
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
