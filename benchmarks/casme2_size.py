"""The whole pipeline at CASME II's size: seconds and peak memory of every stage, one paper-config epoch.

Why: the default run is tiny (48 clips of 320x240, a quarter-width MMNet at 112 px), so it
cannot show what a researcher with CASME II waits for or needs in memory. This builds, in a
temporary git + DVC copy of the project, the synthetic set at CASME II's size
(`conf/dataset/synthetic_casme2_size.yaml`: 26 subjects, 312 clips of 640x480, 30-140 frames,
the paper's schedule and full MMNet at 224 px) and runs the stages one at a time through
`dvc repro -s`, timing each and polling the peak RSS of every process it starts. Then it
trains one fold (`train@sub01`) for one epoch of the paper's schedule, and times `dvc status`
with the 26 fold stages declared. Goals (issue 16): the fold <= 3 GB, `dvc status` <= 5 s,
preprocessing <= 6x the JPEG decode floor per output frame. It prints figures, asserts nothing.

Run from the repository root: ``python benchmarks/casme2_size.py`` (~15-25 min on 2 cores).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from common import PROJECT, copy_project, load, machine, run, run_with_peak
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from preprocess import imread, needed_frames

from mer.datasets import manifest_store

PROFILE = "synthetic_casme2_size"
PREPROCESSING = ["synthesize", "ingest", "landmarks", "normalise", "crop", "cache"]
FOLD_GOAL_MB = 3000
STATUS_GOAL_S = 5.0
FLOOR_GOAL = 6.0


def profile_params() -> dict:
    """params.yaml as `dvc exp run -S dataset=synthetic_casme2_size` composes it."""
    with initialize_config_dir(str(PROJECT / "conf"), version_base=None):
        cfg = compose("config", overrides=[f"dataset={PROFILE}"])
    OmegaConf.resolve(cfg)
    container = OmegaConf.to_container(cfg)
    assert isinstance(container, dict)
    return container


def fold_stages(path: Path, env: dict) -> list[str]:
    """The LOSO fold stages as DVC names them (`train@sub01-7`: subject x seed), in dvc.yaml's order."""
    done = subprocess.run(
        ["dvc", "stage", "list", "--name-only"], cwd=path, env=env, capture_output=True, text=True, check=True
    )
    return [name for name in done.stdout.split() if name.startswith("train@")]


def upstream_of(stage: str, path: Path, env: dict, exclude: list[str]) -> list[str]:
    """The stages besides `exclude` that `dvc repro stage` would run before it (e.g. `flow` for flow input), in
    DVC's order: DVC, not this script, knows the graph."""
    done = subprocess.run(
        ["dvc", "repro", "--dry", stage], cwd=path, env=env, capture_output=True, text=True, check=True
    )
    planned = [line.split("'")[1] for line in done.stdout.splitlines() if line.startswith("Running stage")]
    return [name for name in planned if name.split("@")[0] not in exclude and name != stage]


def timed_stage(stage: str, path: Path, env: dict) -> float:
    """Run one stage alone (`dvc repro -s`), print its table row, return its seconds."""
    seconds, largest, total = run_with_peak(["dvc", "repro", "-s", stage], path, env)
    print(f"| {stage} | {seconds:.1f} | {largest:.0f} | {total:.0f} |", flush=True)
    return seconds


def stage_profile(stage: str, path: Path, env: dict) -> tuple[float, float]:
    """(seconds of the stage's own command run without DVC, seconds of its interpreter start + imports) for a
    stage that has just run: the command is the one dvc.lock recorded, rerun as is (it rewrites the same
    outputs atomically); `--help` exits after the imports, before any work."""
    command = yaml.safe_load((path / "dvc.lock").read_text())["stages"][stage]["cmd"]
    direct = run(shlex.split(command), path, env)
    start = min(run([sys.executable, f"stages/{stage}.py", "--help"], path, env) for _ in range(3))
    return direct, start


def decode_floor(path: Path, rows: pd.DataFrame, window: int) -> tuple[float, int]:
    """Seconds to decode, once each, the frames crop writes (every clip's onset and apex windows), and their
    count: the unit the preprocessing is measured in."""
    frames = [
        path / row.frames[row.frame_numbers.index(n)] for row in rows.itertuples() for n in needed_frames(row, window)
    ]
    start = time.perf_counter()
    for frame in frames:
        imread(str(frame))
    return time.perf_counter() - start, len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary directory)")
    parser.add_argument("--subjects", type=int, help="fewer subjects than CASME II's 26, for a trial of the script")
    args = parser.parse_args()

    print(machine(("torch", "dvc", "h5py")))
    params = profile_params()
    if args.subjects:
        params["synthesize"]["subjects"] = args.subjects
        params["dataset"]["subjects"] = params["dataset"]["subjects"][: args.subjects]
    with tempfile.TemporaryDirectory(prefix="mer-casme2-size-") as tmp:
        path = args.keep or Path(tmp)
        path.mkdir(parents=True, exist_ok=True)
        env = copy_project(path)
        (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        synth = params["synthesize"]
        clips = synth["subjects"] * len(synth["classes"]) * synth["clips_per_class"]
        print(
            f"\nprofile {PROFILE}: {synth['subjects']} subjects, {clips} clips, {synth['frame_size']} px frames, "
            f"{synth['frames']} frames per clip"
        )
        print("\n| stage | s | peak RSS MB (largest process) | peak RSS MB (all processes) |\n|---|---:|---:|---:|")
        seconds = {}
        folds = fold_stages(path, env)
        fold = folds[0]
        for stage in PREPROCESSING:
            seconds[stage] = timed_stage(stage, path, env)
        for stage in upstream_of(fold, path, env, exclude=PREPROCESSING):  # --dry needs the upstream outputs
            seconds[stage] = timed_stage(stage, path, env)

        rows = manifest_store.read(path / "data" / "manifest.csv")
        floor, frames = decode_floor(path, rows, params["crop"]["window"])
        work = sum(seconds[s] for s in PREPROCESSING if s != "synthesize")
        print(
            f"\n{len(rows)} clips, {frames} output frames; decode floor {1e3 * floor / frames:.2f} ms/frame; "
            f"ingest..cache {work:.1f} s = {work / floor:.1f}x the floor (goal <= {FLOOR_GOAL:.0f}x; includes "
            f"each stage's process start and DVC's hashing); landmarks are per clip: "
            f"{seconds['landmarks'] / work:.0%} of it"
        )

        print(
            "\nwhere it goes (the stage's command rerun without DVC; start = interpreter + imports, timed by "
            "`--help`):\n\n| stage | dvc repro s | without DVC s | start s | work s | work x floor |"
            "\n|---|---:|---:|---:|---:|---:|"
        )
        totals = [0.0, 0.0, 0.0]
        for stage in PREPROCESSING[1:]:
            direct, start = stage_profile(stage, path, env)
            totals = [totals[0] + direct, totals[1] + start, totals[2] + direct - start]
            print(
                f"| {stage} | {seconds[stage]:.1f} | {direct:.1f} | {start:.1f} | {direct - start:.1f} | "
                f"{(direct - start) / floor:.1f} |"
            )
        print(
            f"| **total** | {work:.1f} | {totals[0]:.1f} | {totals[1]:.1f} | {totals[2]:.1f} | "
            f"**{totals[2] / floor:.1f}** |\n\nDVC's own share (hashing deps and outs, caching outs): "
            f"{work - totals[0]:.1f} s; interpreter starts and imports: {totals[1]:.1f} s; the stages' work: "
            f"{totals[2] / floor:.1f}x the floor"
        )

        fold_params = yaml.safe_load((path / "params.yaml").read_text())
        fold_params["train"]["epochs"] = 1
        for checkpointing in (False, True):  # the paper schedule as configured, then with less memory
            fold_params["train"]["grad_checkpointing"] = checkpointing
            (path / "params.yaml").write_text(yaml.safe_dump(fold_params, sort_keys=False))
            fold_s, largest, total = run_with_peak(["dvc", "repro", "-s", fold], path, env)
            verdict = "MET" if largest <= FOLD_GOAL_MB else "NOT met"
            print(
                f"\n{fold}, one epoch of the paper schedule ({params['input']['size']} px, "
                f"{params['model']['name']} full width, batch {params['train']['batch_size']}, precision "
                f"{params['train']['precision']}, grad_checkpointing {str(checkpointing).lower()}): {fold_s:.1f} s "
                f"including evaluation and start-up, peak RSS {largest:.0f} MB (goal <= {FOLD_GOAL_MB} MB "
                f"{verdict}); all processes {total:.0f} MB"
            )

        status = [run(["dvc", "status"], path, env) for _ in range(3)]
        verdict = "MET" if min(status) <= STATUS_GOAL_S else "NOT met"
        print(
            f"dvc status with {len(folds)} fold stages: best of 3 {min(status):.2f} s, "
            f"max {max(status):.2f} s (goal <= {STATUS_GOAL_S:.0f} s {verdict}); a no-op `dvc repro` over "
            f"trained folds is benchmarks/pipeline.py's"
        )
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
