"""`mer launch`'s local pool: a GPU per fold where there are GPUs, and an interrupt stops the folds' processes."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import wait
from pathlib import Path

from mer.launch import pools, task
from mer.launch.budget import ThreadBudget
from mer.launch.task import FoldRun
from mer.launch.workspace import Fold


def budget(workers: int) -> ThreadBudget:
    return ThreadBudget(threads=1, workers=workers, cores=2, param=1, local=True)


def fold(name: str) -> Fold:
    return Fold(stage=name, cmd="python stages/train.py", inputs=())


def test_each_fold_gets_a_gpu_of_its_own_and_no_more_folds_than_gpus_run(monkeypatch):
    monkeypatch.setattr(pools, "visible_gpus", lambda: ["3", "5"])
    lock, running, seen, overlaps = threading.Lock(), set(), [], []

    def run_fold(fold: Fold, settings: dict, events, slot: task.Slot) -> FoldRun:
        gpu = slot.gpu
        with lock:
            overlaps.append(set(running))
            assert gpu not in running, f"GPU {gpu} given to two folds at once"
            running.add(gpu)
            seen.append((fold.stage, gpu))
        time.sleep(0.05)
        with lock:
            running.discard(gpu)
        return FoldRun(fold.stage, "here", 0, 0.05, "", [fold.stage])

    monkeypatch.setattr(pools, "run_fold", run_fold)
    pool = pools.LocalPool(budget(workers=4))
    try:
        assert pool.at_once == 2 and str(pool) == "on this machine (1 thread each, 1 of 2 GPUs each), 2 at once"
        futures = [pool.submit(fold(f"train@s{i}"), {}) for i in range(6)]
        wait(futures)
    finally:
        pool.close()
    assert [f.result().returncode for f in futures] == [0] * 6
    assert {gpu for _, gpu in seen} == {"3", "5"} and len(seen) == 6
    assert all(len(others) <= 1 for others in overlaps)


def test_without_gpus_the_pool_runs_workers_at_once(monkeypatch):
    monkeypatch.setattr(pools, "visible_gpus", lambda: [])
    pool = pools.LocalPool(budget(workers=3))
    try:
        assert pool.at_once == 3 and str(pool) == "on this machine (1 thread each, no GPU), 3 at once"
    finally:
        pool.close()


def test_cancel_stops_the_running_process_groups(monkeypatch, tmp_path: Path):
    """A fold's processes run in their own group (so Ctrl-C at the terminal does not reach them half-way):
    cancelling must stop the whole group, the stage's children included, and keep later ones from starting."""
    monkeypatch.setattr(task, "CHILDREN", task.Children())
    pid_file = tmp_path / "grandchild"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    results: list[subprocess.CompletedProcess] = []
    worker = threading.Thread(target=lambda: results.append(task.interruptible(["sh", "-c", script], tmp_path)))
    worker.start()
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    grandchild = int(pid_file.read_text())
    task.CHILDREN.stop()
    worker.join(timeout=10)
    assert not worker.is_alive() and results[0].returncode == -15
    assert _ends(grandchild, timeout=5), "the stage's child (sleep) kept running"
    late = task.interruptible(["sleep", "60"], tmp_path)  # started after the cancel: stopped at once
    assert late.returncode == -15


def _ends(pid: int, timeout: float) -> bool:
    """Whether `pid` is gone or a zombie within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False
