"""The fold tasks on Ray: an existing cluster, or a Ray started on this machine (`--address local`)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import ray
from ray.util.queue import Queue

from mer.launch.budget import ThreadBudget
from mer.launch.task import run_fold
from mer.launch.workspace import Fold


class RayPool:
    """The folds as Ray tasks: on an existing cluster (`--address auto`, `ray://head:10001`), or on a Ray started
    here with workers x threads CPUs (`--address local`). Ray gives a task its GPU."""

    def __init__(self, budget: ThreadBudget, address: str) -> None:
        if address == "local":
            ray.init(address="local", num_cpus=budget.workers * budget.threads, include_dashboard=False)
        else:
            ray.init(address=address)
        self.ray = ray
        self.at_once = budget.workers
        self.gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self.threads = budget.threads
        self.task = ray.remote(run_fold).options(num_cpus=budget.threads, num_gpus=self.gpus, max_retries=0)
        self.events = Queue()
        self.refs: list[Any] = []

    def __str__(self) -> str:
        cpus = self.ray.cluster_resources().get("CPU", 0)
        return f"on Ray ({cpus:.0f} CPUs, {self.threads} CPU and {self.gpus} GPU per task), {self.at_once} at once"

    def submit(self, fold: Fold, settings: dict) -> Future:
        ref = self.task.remote(fold, settings, self.events)
        self.refs.append(ref)
        return ref.future()

    def cancel(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref)

    def close(self) -> None:
        self.ray.shutdown()
