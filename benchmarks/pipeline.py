"""Pipeline overhead benchmark: what DVC itself costs with a CASME II-sized fold list.

Why: with one `train@<subject>` stage per LOSO fold, a real data set has 26 (CASME II) to 94
(CAS(ME)^3) fold stages. Checking that nothing changed must stay cheap (goal: a no-op
`dvc repro` and `dvc status` in <= 5 s with 26 folds), because researchers run them all day.

It builds, in a temporary directory, a git + DVC copy of this project whose synthetic set has
26 subjects (1 clip per class, tiny training so that building it takes a few minutes), runs
the whole pipeline once, then times `dvc status`, a no-op `dvc repro` and
`dvc exp show` a few times each, and prints the figures. It asserts nothing.

Run from the repository root: ``python benchmarks/pipeline.py [--subjects 26] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import copy_project, machine, run


def build(path: Path, subjects: int) -> tuple[float, dict[str, str]]:
    """A project copy with `subjects` synthetic subjects and quick training; returns the full repro's seconds
    and the environment to run the copy in."""
    env = copy_project(path)
    params = yaml.safe_load((path / "params.yaml").read_text())
    params["synthesize"].update(subjects=subjects, clips_per_class=1, frames=[14, 16])
    params["dataset"]["subjects"] = [f"sub{i:02d}" for i in range(1, subjects + 1)]
    params["input"]["size"] = 32
    params["train"].update(epochs=1, batch_size=16, seeds=[7])  # one seed: one fold stage per subject
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    seconds = run(["dvc", "repro"], path, env)
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-qm", "built"], path, env)
    return seconds, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=26, help="fold stages (CASME II: 26)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(machine(("dvc",)))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="mer-pipeline-bench-") as tmp:
        path = Path(tmp)
        built, env = build(path, args.subjects)
        stages = len(yaml.safe_load((path / "dvc.lock").read_text())["stages"])
        print(
            f"built: {stages} stages ({args.subjects} fold stages), full dvc repro {built:.1f} s "
            f"({4 * args.subjects} clips, 1 epoch at 32 px: a pipeline-overhead build, not a training run)"
        )
        print("\n| command | median s | min s | max s | runs |\n|---|---:|---:|---:|---:|")
        for command in (["dvc", "status"], ["dvc", "repro"], ["dvc", "exp", "show"], ["dvc", "metrics", "show"]):
            times = [run(command, path, env) for _ in range(args.repeats)]
            print(
                f"| `{' '.join(command)}` | {statistics.median(times):.2f} | {min(times):.2f} | "
                f"{max(times):.2f} | {len(times)} |"
            )
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import dvc.cli"], check=True, env=env)
        print(f"\nfor scale: `python -c 'import dvc.cli'` alone takes {time.perf_counter() - start:.2f} s")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
