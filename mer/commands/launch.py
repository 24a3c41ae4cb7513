"""Run the out-of-date fold stages in parallel, then let DVC finish the pipeline.

`dvc repro` runs stages one after another, and two `dvc repro` in one workspace fight over its
lock. So `mer launch` asks DVC which fold stages (the stages a `foreach`/`matrix` generates) are
stale, reproduces their upstream stages here first, and gives each stale fold to a task that
runs `dvc repro --single-item <fold>` in its own clone of this workspace's tracked state, sharing this
workspace's DVC cache. Each clone's run leaves a run-cache entry in that cache, so the final
plain `dvc repro` here restores every fold ("Stage 'train@...' is cached - skipping run") and
runs the report. DVC decides what is stale; the pool decides where a fold runs.

The clones get the tracked files as they are now, uncommitted edits included (`git stash
create`), and this workspace's dvc.lock; untracked files are not carried (they are listed).
Without --address the tasks run on this machine (`LocalPool`: threads that each start a fold's
processes, one GPU per fold where there are GPUs). With it they are Ray tasks: `--address local`
starts Ray here with --workers x threads CPUs; any other address is an existing cluster, whose
nodes must see this workspace and its DVC cache at the same paths. A Ray task takes one GPU when
the cluster has GPUs.

Thread budget: each fold runs (and a Ray task asks for) as many CPUs as its fold runs threads (`ThreadBudget`): by
default cores / --workers (at least 1), or --threads, or `train.threads` when that is a number. A
fold's result depends on its thread count, so that count must be the fold's param: when
`train.threads` says otherwise (`auto`, which means every core, or another number), launch sets
`train.threads` in this workspace's params.yaml first, as `dvc exp run -S` would, and says so.
The clones, their run-cache entries, the head's `dvc repro` and any later `dvc repro` then all
see the setting the folds ran with, so the run-cache never hands one setting's result to another,
and `dvc repro` at the same setting gives byte-identical folds.

A failed fold is shown with its command and log; the others finish and are restored here, so a
rerun runs only what is still stale. The workspace is written only by DVC here, but for
`train.threads` in params.yaml (the budget, above).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mer.io import atomic_path, load_params

LOG_TAIL_LINES = 40
PARAMS = "params.yaml"  # where dvc.yaml's params come from (DVC's default file)
LOG_DIR = Path(".dvc/tmp/mer-launch")  # inside DVC's own scratch folder, ignored by git and DVC


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, required=True, help="how many folds run at once")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads per fold, set as train.threads in params.yaml; default: train.threads when it is a "
        "number, else this machine's cores / --workers (at least 1)",
    )
    parser.add_argument(
        "--address",
        help="run the folds as Ray tasks: `local` starts Ray on this machine with --workers x threads CPUs; "
        "auto or ray://head:10001 is an existing cluster; default: no Ray, the folds run on this machine",
    )


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
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(params)
    data["train"]["threads"] = threads
    with atomic_path(params) as tmp, tmp.open("w") as out:
        yaml.dump(data, out)


@dataclass(frozen=True)
class Fold:
    stage: str  # DVC's name for it, e.g. train@sub01
    cmd: str  # what it runs, which names the subject
    inputs: tuple[str, ...]  # its deps that other stages write: checked out from the cache in its clone


@dataclass(frozen=True)
class FoldRun:
    stage: str
    host: str
    returncode: int
    seconds: float
    log: str
    ran: list[str]  # stages the clone's `dvc repro` ran (only the fold, when upstream came from the cache)
    setup_seconds: float = 0.0  # clone + dvc checkout of the inputs: the per-task cost of running elsewhere


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise SystemExit(f"mer launch: --workers must be at least 1, got {args.workers}")
    root = Path.cwd()
    if not (root / "dvc.yaml").exists():
        raise SystemExit(f"mer launch: no dvc.yaml in {root}; run it from the project's root")
    folds, upstream = fold_stages(root)
    budget = thread_budget(
        load_params(root / PARAMS).get("train", {}).get("threads", "auto"),
        args.workers,
        args.threads,
        len(os.sched_getaffinity(0)),
        local=args.address in (None, "local"),
    )
    if folds:
        print(f"mer launch: thread budget: {budget}", flush=True)
        if budget.sets_param:
            set_threads_param(root / PARAMS, budget.threads)
            folds, upstream = fold_stages(root)
    if upstream:
        print(f"mer launch: reproducing upstream stages here first: {', '.join(upstream)}", flush=True)
        if dvc(root, "repro", *upstream).returncode:
            return 1
        folds, _ = fold_stages(root)
    if folds:
        runs = launch(root, folds, budget, args.address)
        failed = [r for r in runs if r.returncode]
        ok = [r.stage for r in runs if not r.returncode]
        if failed:
            report_failures(root, failed, {f.stage: f for f in folds})
            if ok:
                print(f"mer launch: restoring the {len(ok)} finished folds here from the run-cache", flush=True)
                dvc(root, "repro", *ok)
            print(
                f"mer launch: {len(failed)} of {len(runs)} folds failed; rerun `mer launch` to run what is still stale",
                flush=True,
            )
            return 1
    else:
        print("mer launch: no fold stage is out of date", flush=True)
    print("mer launch: dvc repro (restores the folds from the run-cache, runs what follows)", flush=True)
    return dvc(root, "repro").returncode


FOLD_GROUPS = ("train", "final")  # dvc.yaml's fold stages: the matrix of LOSO folds and the optional final model


def fold_stages(root: Path) -> tuple[list[Fold], list[str]]:
    """The stale fold stages (those DVC generated from `train` and `final`), and the stale stages upstream of any.

    Other generated stages (`cache@<data set>` and the like: a foreach only makes them optional) are no folds:
    upstream ones run here first, downstream ones in the head's `dvc repro`."""
    from dvc.parsing import JOIN
    from dvc.repo import Repo

    def is_fold(stage: Any) -> bool:
        return stage.addressing.split(JOIN)[0] in FOLD_GROUPS and JOIN in stage.addressing

    with Repo(str(root)) as repo:
        graph = repo.index.graph
        stale = set(repo.status())
        generated = [s for s in graph.nodes if is_fold(s)]
        upstream = {a for s in generated for a in _ancestors(graph, s) if not is_fold(a)}
        nested = sorted({s.addressing for s in generated for a in _ancestors(graph, s) if is_fold(a)})
        if nested:
            raise SystemExit(
                f"mer launch: stages {nested} depend on other fold stages; mer launch runs one "
                "level of folds, so run `dvc repro` for them"
            )
        written = {out.def_path for s in graph.nodes for out in s.outs}
        folds = [
            Fold(s.addressing, s.cmd, tuple(d.def_path for d in s.deps if d.def_path in written))
            for s in generated
            if s.addressing in stale
        ]
        upstream_stale = [s.addressing for s in upstream if s.addressing in stale]
    return sorted(folds, key=lambda f: f.stage), sorted(upstream_stale)


def _ancestors(graph: Any, stage: Any) -> set:
    """What `stage` depends on, directly or not (DVC's graph points from a stage to its dependencies)."""
    import networkx as nx  # type: ignore[import-untyped]

    return set(nx.descendants(graph, stage))


def launch(root: Path, folds: list[Fold], budget: ThreadBudget, address: str | None) -> list[FoldRun]:
    """Each fold's `dvc repro` as a task of `budget.threads` CPUs, at most `budget.workers` at once; one line as
    each starts and ends."""
    commit = snapshot(root)
    lock = (root / "dvc.lock").read_text() if (root / "dvc.lock").exists() else None
    config_local = root / ".dvc" / "config.local"
    settings = {
        "head": str(root),
        "commit": commit,
        "lock": lock,
        "cache": cache_dir(root),
        "threads": str(budget.threads),
        "config_local": config_local.read_text() if config_local.exists() else None,
    }
    pool: LocalPool | RayPool = LocalPool(budget) if address is None else RayPool(budget, address)
    try:
        print(f"mer launch: {len(folds)} folds {pool}, from commit {commit[:12]}", flush=True)
        start = time.perf_counter()
        waiting, runs = list(folds), []
        running: dict[Future, Fold] = {}
        try:
            while waiting or running:
                while waiting and len(running) < pool.at_once:
                    fold = waiting.pop(0)
                    running[pool.submit(fold, settings)] = fold
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                _print_starts(pool.events)
                for future in done:
                    running.pop(future)
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
    the folds. With GPUs, each fold gets one to itself (`CUDA_VISIBLE_DEVICES`), so at most one fold per GPU."""

    def __init__(self, budget: ThreadBudget) -> None:
        self.gpus = visible_gpus()
        self.at_once = min(budget.workers, len(self.gpus)) if self.gpus else budget.workers
        self.budget = budget
        self.events: queue.Queue = queue.Queue()
        self.slots: queue.Queue[str | None] = queue.Queue()
        slots: list[str | None] = [*self.gpus[: self.at_once]] or [None] * self.at_once
        for slot in slots:
            self.slots.put(slot)
        self.executor = ThreadPoolExecutor(self.at_once, thread_name_prefix="fold")

    def __str__(self) -> str:
        gpus = f", 1 of {len(self.gpus)} GPUs each" if self.gpus else ", no GPU"
        threads = f"{self.budget.threads} thread{'s' if self.budget.threads != 1 else ''}"
        return f"on this machine ({threads} each{gpus}), {self.at_once} at once"

    def submit(self, fold: Fold, settings: dict) -> Future:
        return self.executor.submit(self._run, fold, settings)

    def _run(self, fold: Fold, settings: dict) -> FoldRun:
        gpu = self.slots.get()
        try:
            return run_fold(fold, settings, self.events, gpu)
        finally:
            self.slots.put(gpu)

    def cancel(self) -> None:
        _CHILDREN.stop()

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class RayPool:
    """The folds as Ray tasks: on an existing cluster (`--address auto`, `ray://head:10001`), or on a Ray started
    here with workers x threads CPUs (`--address local`). Ray gives a task its GPU."""

    def __init__(self, budget: ThreadBudget, address: str) -> None:
        import ray
        from ray.util.queue import Queue

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


def snapshot(root: Path) -> str:
    """A commit of the tracked files as they are now (HEAD when nothing is modified); names the untracked files."""
    if subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True).returncode:
        raise SystemExit(
            f"mer launch: {root} has no git commit yet; commit the project (git add -A && git commit) "
            "so that the fold clones have something to check out"
        )
    stash = _git(root, "stash", "create")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard").splitlines()
    if untracked:
        shown = ", ".join(untracked[:10]) + (f" and {len(untracked) - 10} more" if len(untracked) > 10 else "")
        print(
            f"mer launch: {len(untracked)} untracked files are not in the fold clones (git add them if a fold "
            f"needs them): {shown}",
            flush=True,
        )
    return stash or _git(root, "rev-parse", "HEAD")


def cache_dir(root: Path) -> str:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return str(repo.cache.local_cache_dir)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"mer launch: git {' '.join(args)} failed in {root}:\n{done.stderr}")
    return done.stdout.strip()


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`dvc <args>` in the head workspace, its output streamed to ours."""
    return subprocess.run([_dvc_executable(), *args], cwd=root)


def _dvc_executable() -> str:
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else "dvc"


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
            log += _interruptible([_dvc_executable(), "checkout", *fold.inputs], clone, check=True).stdout
        setup = time.perf_counter() - start
        done = _interruptible(
            [_dvc_executable(), "repro", "--single-item", stage], clone, threads=settings["threads"], gpu=gpu
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
    from dvc.config import Config

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


class _Children:
    """The process groups this process's fold threads started, so an interrupt stops them (LocalPool; in a Ray task
    Ray's cancel interrupts the task, and `_interruptible` stops its group itself)."""

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


_CHILDREN = _Children()


def _stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)


def _interruptible(
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
    _CHILDREN.add(process)
    try:
        stdout, _ = process.communicate()
    except BaseException:
        _stop_group(process)
        process.wait()
        raise
    finally:
        _CHILDREN.discard(process)
    if check and process.returncode:
        raise subprocess.CalledProcessError(process.returncode, args, stdout)
    return subprocess.CompletedProcess(args, process.returncode, stdout)


def report_failures(root: Path, failed: list[FoldRun], folds: dict[str, Fold]) -> None:
    """Each failed fold's command (which names its subject) and log tail; the whole log under .dvc/tmp."""
    for result in failed:
        path = root / LOG_DIR / f"{result.stage.replace('/', '_')}.log"
        with atomic_path(path) as tmp:
            tmp.write_text(result.log)
        tail = "\n".join(result.log.splitlines()[-LOG_TAIL_LINES:])
        print(
            f"\nFAILED {result.stage} (exit {result.returncode}, on {result.host}): {folds[result.stage].cmd}\n"
            f"--- last {LOG_TAIL_LINES} lines of its log (all of it: {path}) ---\n{tail}\n---",
            flush=True,
        )
