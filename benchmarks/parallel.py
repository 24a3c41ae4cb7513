"""Folds in parallel: sequential `dvc repro` against `mer launch --workers 2` on the default folds.

Why: `mer launch` exists to cut the wall clock of a LOSO run; this measures by how much on this
machine, and what each task costs beside the fold itself (its clone, made once per pool slot, and the checkout
of its inputs).

It builds two git + DVC copies of this project with the default params (6 synthetic subjects x
`train.seeds`: 18 folds by default), reproduces the upstream stages (synthesize ... cache) in each
without timing them, then times in one copy `dvc repro` (the folds one after another, then the report) and in the other
`mer launch --workers 2` (the folds as 2 tasks at a time on this machine, or as Ray tasks with `--address local`;
then the head restores them from the run-cache and its `dvc repro` runs the report). Each copy has its own DVC cache, so
neither finds the other's folds. Both run the default params as a user would: `dvc repro` at
`train.threads: auto` (every core), `mer launch` at its thread budget (cores / workers, which it sets
as `train.threads` in its copy). Each fold's time in the sequential run (from one "Running stage"
line of DVC's output to the next, read as they are printed) gives the folds' summed single-fold time,
and the launch's folds phase against that sum is its speed-up (at most --workers). It prints the
figures and asserts nothing.

Run from the repository root: ``python benchmarks/parallel.py [--workers 2] [--address local]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import load, machine

PROJECT = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "stages", "mer", ".gitignore"]


def stage_seconds(args: list[str], cwd: Path, env: dict) -> tuple[float, dict[str, float]]:
    """Seconds `args` (a `dvc repro`) took, and each stage's seconds: from its "Running stage" line to the
    next one (or the end), timed as the lines arrive (unbuffered)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=cwd, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    marks: list[tuple[str, float]] = []
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Running stage"):
            marks.append((line.split("'")[1], time.perf_counter()))
    if process.wait():
        raise RuntimeError(f"{' '.join(args)} failed:\n{''.join(lines)}")
    end = time.perf_counter()
    ends = [at for _, at in marks[1:]] + [end]
    return end - start, {stage: stop - at for (stage, at), stop in zip(marks, ends, strict=True)}


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    """Seconds `args` took and its output; raises with the output if it failed."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start, done.stdout


def build(path: Path, env: dict) -> None:
    """A committed project copy whose upstream stages are reproduced (the folds and the report are stale)."""
    for name in COPIED:
        source = PROJECT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, path / name)
    for args in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "b@example.com"],
        ["git", "config", "user.name", "bench"],
        ["dvc", "init", "-q"],
        ["dvc", "repro", "cache"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "upstream built"],
    ):
        run(args, path, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--address", help="mer launch's --address (e.g. local: Ray started here); default: no Ray")
    args = parser.parse_args()
    address = ["--address", args.address] if args.address else []
    print(machine(("dvc", "ray", "torch")))
    bin_dir = str(Path(sys.executable).parent)
    with tempfile.TemporaryDirectory(prefix="mer-bench-parallel-") as tmp:
        ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
        env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ["PATH"],
            "DVC_NO_ANALYTICS": "1",
            "RAY_TMPDIR": ray_tmp,
        }
        copies = {}
        for name in ("sequential", "launch"):
            copies[name] = Path(tmp) / name
            copies[name].mkdir()
            env_copy = {**env, "PYTHONPATH": str(copies[name])}
            build(copies[name], env_copy)
        sequential, stages = stage_seconds(
            ["dvc", "repro"], copies["sequential"], {**env, "PYTHONPATH": str(copies["sequential"])}
        )
        launched, out = run(
            [sys.executable, "-m", "mer", "launch", "--workers", str(args.workers), *address],
            copies["launch"],
            {**env, "PYTHONPATH": str(copies["launch"])},
        )
        shutil.rmtree(ray_tmp, ignore_errors=True)
    tasks = [float(s) for s in re.findall(r" done in ([\d.]+) s", out)]
    setups = [float(s) for s in re.findall(r"clone \+ checkout ([\d.]+) s", out)]
    phase = re.search(r"\d+ folds in ([\d.]+) s", out)
    if phase is None:
        raise RuntimeError(f"mer launch printed no folds total:\n{out}")
    folds_phase = float(phase.group(1))
    single = [seconds for stage, seconds in stages.items() if stage.startswith("train@")]
    budget = re.search(r"thread budget: (.*)", out)
    print(f"mer launch's thread budget: {budget.group(1) if budget else 'not printed'}")
    print(
        f"sequential dvc repro ({len(single)} folds + report, train.threads auto): {sequential:.1f} s; "
        f"folds {sum(single):.1f} s (single fold mean {sum(single) / len(single):.1f} s, "
        f"min {min(single):.1f} s, max {max(single):.1f} s)"
    )
    print(
        f"mer launch --workers {' '.join([str(args.workers), *address])} (pool start + folds + head dvc repro): "
        f"{launched:.1f} s; folds phase {folds_phase:.1f} s"
    )
    print(f"ratio sequential / launch: {sequential / launched:.2f}x")
    print(
        f"folds phase speed-up against the summed single-fold times: {sum(single):.1f} / {folds_phase:.1f} s = "
        f"{sum(single) / folds_phase:.2f}x (at most {args.workers}x)"
    )
    print(
        f"per task: {len(tasks)} tasks, mean {sum(tasks) / len(tasks):.1f} s "
        f"({sum(tasks) / len(tasks) / (sum(single) / len(single)):.2f}x a single sequential fold); "
        f"per-task overhead (clone at a slot's first fold + checkout of new inputs) mean "
        f"{sum(setups) / len(setups):.2f} s (max {max(setups):.2f} s)"
    )
    head = re.search(r"the head's dvc repro took ([\d.]+) s", out)
    restore = re.search(r"finished folds here from the run-cache in ([\d.]+) s", out)
    head_s, restore_s = (float(m.group(1)) if m else float("nan") for m in (head, restore))
    print(
        f"outside the folds phase: {launched - folds_phase:.1f} s, of it restoring the folds in the head "
        f"{restore_s:.1f} s and the head's dvc repro (attention + report) {head_s:.1f} s; the sequential run's "
        f"stages after the folds: {sequential - sum(single):.1f} s"
    )
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
