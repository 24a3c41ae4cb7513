"""Where the fold tasks run: `LocalPool` (this machine, no Ray) or `RayPool` (mer/launch/ray_pool.py), and the loop
that keeps `workers` of them running and prints a line as each starts and ends."""

from __future__ import annotations

import glob
import os
import queue
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from mer.launch import task
from mer.launch.budget import ThreadBudget
from mer.launch.task import FoldRun, Slot, run_fold
from mer.launch.workspace import Fold


def run_folds(folds: list[Fold], settings: dict, budget: ThreadBudget, address: str | None) -> list[FoldRun]:
    """Each fold as a task (`run_fold` with `settings`: workspace.task_settings) of `budget.threads` CPUs, at most
    `budget.workers` at once, on this machine or, with an `address`, on Ray; one line as each starts and ends."""
    pool: Pool = LocalPool(budget) if address is None else _ray_pool(budget, address)
    try:
        print(f"mer launch: {len(folds)} folds {pool}, from commit {settings['commit'][:12]}", flush=True)
        start = time.perf_counter()
        waiting, runs = list(folds), []
        running: set[Future] = set()
        try:
            while waiting or running:
                while waiting and len(running) < pool.at_once:
                    running.add(pool.submit(waiting.pop(0), settings))
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                _print_starts(pool.events)
                for future in done:
                    running.discard(future)
                    result: FoldRun = future.result()
                    runs.append(result)
                    print(
                        f"[{len(runs)}/{len(folds)}] {result.stage} {'done' if not result.returncode else 'FAILED'}"
                        f" in {result.seconds:.1f} s on {result.host} (clone + checkout {result.setup_seconds:.1f} s)"
                        + (
                            f" (also ran {', '.join(r for r in result.ran if r != result.stage)})"
                            if set(result.ran) - {result.stage}
                            else ""
                        ),
                        flush=True,
                    )
        except KeyboardInterrupt:
            print(
                f"mer launch: interrupted; cancelling {len(running)} running folds (their clones are removed, "
                "this workspace is unchanged)",
                flush=True,
            )
            pool.cancel()
            wait(running, timeout=30)
            raise
        failed = sum(1 for r in runs if r.returncode)
        print(
            f"mer launch: {len(runs)} folds in {time.perf_counter() - start:.1f} s: {len(runs) - failed} done, "
            f"{failed} failed",
            flush=True,
        )
        return runs
    finally:
        pool.close()


class LocalPool:
    """The folds as process trees started by threads of this process, on this machine's cores and GPUs.

    On one machine this is all Ray would do, without its start and stop (~7 s here) and its daemons' CPU beside
    the folds. With GPUs, each fold gets one to itself (`CUDA_VISIBLE_DEVICES`), so at most one fold per GPU. Each
    slot (a place for one running fold) keeps one clone for the folds it runs, made at its first fold."""

    def __init__(self, budget: ThreadBudget) -> None:
        self.gpus = visible_gpus()
        self.at_once = min(budget.workers, len(self.gpus)) if self.gpus else budget.workers
        self.budget = budget
        self.events: queue.Queue = queue.Queue()
        gpus: list[str | None] = [*self.gpus[: self.at_once]] or [None] * self.at_once
        self.all_slots = [Slot(gpu) for gpu in gpus]
        self.slots: queue.Queue[Slot] = queue.Queue()  # the free ones
        for slot in self.all_slots:
            self.slots.put(slot)
        self.executor = ThreadPoolExecutor(self.at_once, thread_name_prefix="fold")

    def __str__(self) -> str:
        gpus = f", 1 of {len(self.gpus)} GPUs each" if self.gpus else ", no GPU"
        threads = f"{self.budget.threads} thread{'s' if self.budget.threads != 1 else ''}"
        return f"on this machine ({threads} each{gpus}), {self.at_once} at once"

    def submit(self, fold: Fold, settings: dict) -> Future:
        return self.executor.submit(self._run, fold, settings)

    def _run(self, fold: Fold, settings: dict) -> FoldRun:
        slot = self.slots.get()
        try:
            return run_fold(fold, settings, self.events, slot)
        finally:
            self.slots.put(slot)

    def cancel(self) -> None:
        task.CHILDREN.stop()

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for slot in self.all_slots:
            if slot.clone is not None:
                slot.clone.remove()


def visible_gpus() -> list[str]:
    """The CUDA devices a fold here may be given: CUDA_VISIBLE_DEVICES's ids when set, else torch's count (torch is
    imported only where NVIDIA's device files exist: it takes seconds, and a machine without them has no GPU)."""
    if not glob.glob("/dev/nvidia[0-9]*"):
        return []
    import torch

    count = torch.cuda.device_count()
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    return ids.split(",")[:count] if ids else [str(i) for i in range(count)]


def _print_starts(events: Any) -> None:
    while True:
        try:
            stage, host = events.get_nowait()
        except queue.Empty:  # Ray's queue raises a subclass of it
            return
        print(f"start {stage} on {host}", flush=True)


class Pool(Protocol):
    at_once: int  # tasks that may run at once
    events: Any  # (stage, host) as each task starts: a queue whose get_nowait raises queue.Empty when empty

    def submit(self, fold: Fold, settings: dict) -> Future: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


def _ray_pool(budget: ThreadBudget, address: str) -> Pool:
    """Imported only here: importing Ray costs ~0.5 s that a run on this machine does not need."""
    from mer.launch.ray_pool import RayPool

    return RayPool(budget, address)
