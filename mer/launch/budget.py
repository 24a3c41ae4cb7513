"""The thread budget: how many threads each fold runs, which is also what its task asks the pool for.

A fold's result depends on its thread count (a float sum split over more threads rounds differently), so the count
is the fold's param `train.threads`; `set_threads_param` writes the budget there when the param says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from mer.io import atomic_path


@dataclass(frozen=True)
class ThreadBudget:
    """Each fold's thread count, which is also the CPUs its Ray task asks for."""

    threads: int
    workers: int
    cores: int  # of this machine (the head); the budget's base when neither --threads nor a number is given
    param: int | str  # train.threads in params.yaml as found
    local: bool  # the folds run on this machine (no --address, or --address local)

    @property
    def sets_param(self) -> bool:
        """Whether params.yaml must say `threads` for the folds' params to be what they run with. `auto` already
        does when the folds run here with every core; on a cluster a node's cores are not this machine's."""
        return self.param != self.threads and not (self.param == "auto" and self.local and self.threads == self.cores)

    def __str__(self) -> str:
        line = (
            f"{self.workers} workers x {self.threads} thread{'s' if self.threads != 1 else ''} "
            f"({'on ' + str(self.cores) + ' cores' if self.local else 'a task asks Ray for as many CPUs'})"
        )
        if self.sets_param:
            line += (
                f"; train.threads {self.param} -> {self.threads} in params.yaml (a fold's result depends on its "
                f"thread count, so its params say it: folds trained at {self.param} are stale)"
            )
        if self.local and self.workers * self.threads > self.cores:
            line += (
                f"; OVERSUBSCRIBED: {self.workers * self.threads} threads on {self.cores} cores run each fold "
                "several times slower (fewer --workers, or --threads 1)"
            )
        return line


def thread_budget(param: int | str, workers: int, threads: int | None, cores: int, local: bool) -> ThreadBudget:
    """--threads if given, else `train.threads` if it is a number, else cores / workers (at least 1)."""
    if threads is not None and threads < 1:
        raise SystemExit(f"mer launch: --threads must be at least 1, got {threads}")
    if threads is None:
        threads = param if isinstance(param, int) else max(1, cores // workers)
    return ThreadBudget(threads, workers, cores, param, local)


def set_threads_param(params: Path, threads: int) -> None:
    """`train.threads: <threads>` in `params`, the rest of the file as it was (ruamel's round trip), atomically."""
    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(params)
    data["train"]["threads"] = threads
    with atomic_path(params) as tmp, tmp.open("w") as out:
        yaml.dump(data, out)
