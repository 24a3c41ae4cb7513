"""Run the out-of-date fold stages in parallel, then let DVC finish the pipeline.

`dvc repro` runs stages one after another, and two `dvc repro` in one workspace fight over its
lock. So `mer launch` asks DVC which fold stages (the stages a `foreach`/`matrix` generates) are
stale, reproduces their upstream stages here first, and gives each stale fold to a task that
runs `dvc repro --single-item <fold>` in a clone of this workspace's tracked state (on this
machine, one clone per pool slot, reused by its folds), sharing this workspace's DVC cache. Each
fold's run leaves a run-cache entry in that cache, from which the finished folds are restored here
("Stage 'train@...' is cached - skipping run") through DVC's stage API with one dvc.lock write for
all (mer/launch/restore.py; `dvc repro` would rewrite the lock once a fold). A plain `dvc repro`
then runs the report. DVC decides what is stale; the pool decides where a fold runs.

The clones get the tracked files as they are now, uncommitted edits included (`git stash
create`), and the dvc.lock entries of the folds' inputs; untracked files are not carried (they are
listed).
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
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mer.io import atomic_path, load_params

if TYPE_CHECKING:
    from mer.launch.task import FoldRun
    from mer.launch.workspace import Fold

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


def run(args: argparse.Namespace) -> int:
    from mer.launch import pools, workspace
    from mer.launch.budget import set_threads_param, thread_budget

    if args.workers < 1:
        raise SystemExit(f"mer launch: --workers must be at least 1, got {args.workers}")
    root = Path.cwd()
    if not (root / "dvc.yaml").exists():
        raise SystemExit(f"mer launch: no dvc.yaml in {root}; run it from the project's root")
    folds, upstream = workspace.fold_stages(root)
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
            folds, upstream = workspace.fold_stages(root)
    if upstream:
        print(f"mer launch: reproducing upstream stages here first: {', '.join(upstream)}", flush=True)
        if workspace.dvc(root, "repro", *upstream).returncode:
            return 1
        folds, _ = workspace.fold_stages(root)
    if folds:
        runs = pools.run_folds(folds, workspace.task_settings(root, budget.threads, folds), budget, args.address)
        failed = [r for r in runs if r.returncode]
        restore(root, [r.stage for r in runs if not r.returncode])
        if failed:
            report_failures(root, failed, {f.stage: f for f in folds})
            print(
                f"mer launch: {len(failed)} of {len(runs)} folds failed; rerun `mer launch` to run what is still stale",
                flush=True,
            )
            return 1
    else:
        print("mer launch: no fold stage is out of date", flush=True)
    print("mer launch: dvc repro (runs what follows the folds)", flush=True)
    began = time.perf_counter()
    code = workspace.dvc(root, "repro").returncode
    print(f"mer launch: the head's dvc repro took {time.perf_counter() - began:.1f} s", flush=True)
    return code


def restore(root: Path, stages: list[str]) -> None:
    """The finished folds' outputs and dvc.lock entries here, from the run-cache their tasks filled."""
    from mer.launch.restore import restore_folds

    if not stages:
        return
    began = time.perf_counter()
    restored = restore_folds(root, stages)
    print(
        f"mer launch: restored {len(restored)} of {len(stages)} finished folds here from the run-cache in "
        f"{time.perf_counter() - began:.1f} s",
        flush=True,
    )


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
