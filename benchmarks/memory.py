"""Memory benchmark: peak RSS of a fold, as configured and at the paper's scale, against the 3 GB goal.

Why: a paper fold (CASME II size, full MMNet at 224 px, batch 32) should fit a 4 GB laptop or a cluster task's
memory request (issue 25: <= 3000 MB). Peak RSS is the child's VmHWM, read from /proc/<pid>/status every 20 ms
(not ru_maxrss: Linux carries that across fork + exec).

1. ``stages/train.py --subject sub01`` with params.yaml.
2. The same command with a copy of the params at the paper's scale (224 px, full width, batch 32, padding 15,
   one epoch) in fp32, in ``precision: auto`` (bf16 on a bf16 CPU) and with ``grad_checkpointing``.
3. Extrapolation to CASME II: a temporary 255-clip cache cycles the real clips under new subject names, so fold
   sub01 trains on 247 clips; a fresh child measures the RSS growth from holding that fold's data the way
   ``train_fold`` holds it, and the growth beyond the small cache's is added to the peaks of 2.

Run from the repository root after ``dvc repro``: ``python benchmarks/memory.py``. Peak RSS barely depends on
the machine's load, so it can be measured beside other work.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from common import BATCH, CASME2, SIZE, SUBJECT, in_child, load, machine, vmhwm_mb

from mer.cache import Cache, CacheWriter, ClipWindows
from mer.training import inputs


def peak_rss(command: list[str], log: Path) -> tuple[float, float]:
    """(peak RSS MB, seconds) of a child, polled every 20 ms: VmHWM only grows, the last reading is the peak."""
    start, peak = time.perf_counter(), 0.0
    with open(log, "w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        while child.poll() is None:
            peak = max(peak, vmhwm_mb(child.pid) or 0.0)
            time.sleep(0.02)
    if child.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{log.read_text()[-2000:]}")
    return peak, time.perf_counter() - start


def train_command(params: Path, cache: Path, tmp: Path) -> list[str]:
    """The DVC stage's command, its outputs sent to `tmp`."""
    return [
        sys.executable,
        "stages/train.py",
        "--subject",
        SUBJECT,
        "--params",
        str(params),
        "--cache",
        str(cache),
        "--models",
        str(tmp / "models"),
        "--reports",
        str(tmp / "reports"),
    ]


def paper_params(params: dict, path: Path, **train: object) -> Path:
    """params.yaml with the paper's scale for one epoch: 224 px, full-width MMNet, batch 32, padding 15,
    and the `train` keys given."""
    p = copy.deepcopy(params)
    p["input"]["size"] = SIZE
    p["model"] = {"name": "mmnet", "options": {}}
    p["train"].update(epochs=1, batch_size=BATCH, weight_decay=0.6, **train)
    p["train"]["augment"]["crop_padding"] = 15
    path.write_text(yaml.safe_dump(p))
    return path


def replicated_cache(cache: Cache, path: Path, clips: int) -> Path:
    """A cache of `clips` clips cycling through the real ones; copies get new subject names, so fold
    SUBJECT keeps its own test clips and trains on the rest (a CASME II-sized fold)."""
    writer = CacheWriter(path, clips, cache.window, cache.size, cache.classes, False, cache.params)
    for j in range(clips):
        i, copy = j % len(cache), j // len(cache)
        suffix = f"_copy{copy}" if copy else ""
        writer.add(
            ClipWindows(
                sample_id=cache.sample_ids[i] + suffix,
                subject=cache.subjects[i] + suffix,
                label=int(cache.labels[i]),
                onset=cache.load("onset", [i])[0],
                apex=cache.load("apex", [i])[0],
                onset_position=int(cache.onset_position[i]),
                apex_position=int(cache.apex_position[i]),
                onset_frames=cache.load("onset_frames", [i])[0].tolist(),
                apex_frames=cache.load("apex_frames", [i])[0].tolist(),
            )
        )
    writer.close()
    return path


def held_data_mb(cache_path: str) -> dict[str, float]:
    """In a child: RSS growth from holding fold SUBJECT's data as train_fold does (uint8 training
    windows; float motion and onset of the test clips), and its clip counts."""

    def rss() -> float:
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024

    cache = Cache(cache_path)
    train_idx, test_idx = cache.fold(SUBJECT)
    before = rss()
    train = inputs.load_frames(cache, train_idx, "difference", SIZE)
    test = inputs.select(inputs.load_frames(cache, test_idx, "difference", SIZE), torch.arange(len(test_idx)))
    motion = inputs.motion(test, "difference")
    held = rss() - before  # train, test.onset and motion are all alive here
    return {"held_mb": held, "train": len(train), "test": len(motion)}


PAPER_MEMORY_RUNS = {
    "precision fp32": {"precision": "fp32"},
    "precision auto": {"precision": "auto"},
    "precision auto + grad_checkpointing": {"precision": "auto", "grad_checkpointing": True},
}
MEMORY_GOAL_MB = 3000


def memory(cache: Cache, params_path: Path, tmp: Path) -> None:
    """Peak RSS of the two training children, and the extrapolation to a CASME II-sized fold."""
    params = yaml.safe_load(params_path.read_text())
    default, default_s = peak_rss(train_command(params_path, cache.path, tmp / "default"), tmp / "default.log")
    paper_runs = {}
    for name, train in PAPER_MEMORY_RUNS.items():
        paper_yaml = paper_params(params, tmp / f"{name}.yaml", **train)
        paper_runs[name] = peak_rss(train_command(paper_yaml, cache.path, tmp / name), tmp / f"{name}.log")
    big = replicated_cache(cache, tmp / "casme2-size.h5", CASME2["clips"])
    small_held, big_held = (in_child(held_data_mb, (str(path),)) for path in (cache.path, big))
    growth = big_held["held_mb"] - small_held["held_mb"]
    per_clip = growth / (big_held["train"] - small_held["train"])
    print("\nPeak RSS (VmHWM of the child, polled every 20 ms)")
    print(
        f"stages/train.py --subject {SUBJECT}, params.yaml ({params['input']['size']} px, "
        f"{params['model']['options']}, batch {params['train']['batch_size']}, {params['train']['epochs']} epochs): "
        f"{default:.0f} MB ({default_s:.0f} s)"
    )
    for name, (paper, paper_s) in paper_runs.items():
        print(
            f"stages/train.py --subject {SUBJECT}, one epoch at {SIZE} px, full width, batch {BATCH}, {name}: "
            f"{paper:.0f} MB ({paper_s:.0f} s)"
        )
    print(
        f"fold data held in memory (RSS growth in a child): {small_held['held_mb']:.0f} MB for "
        f"{small_held['train']} + {small_held['test']} clips here; {big_held['held_mb']:.0f} MB for "
        f"{big_held['train']} + {big_held['test']} clips of a {CASME2['clips']}-clip cache (the real clips cycled), "
        f"{per_clip:.2f} MB per training clip"
    )
    for name, (paper, _) in paper_runs.items():
        total = paper + growth
        print(
            f"extrapolated peak for a {CASME2['clips']}-clip (CASME II) fold at {SIZE} px, full width, batch "
            f"{BATCH}, {name}: {paper:.0f} + {growth:.0f} = {total:.0f} MB, goal <= {MEMORY_GOAL_MB} MB "
            f"{'MET' if total <= MEMORY_GOAL_MB else 'NOT met'}"
        )
    print(
        "(measured peak here plus the measured growth of the held data; activations, model and optimiser do "
        "not grow with the clips)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cache", default="data/cache.h5")
    args = parser.parse_args()
    print(machine(("torch", "numpy", "h5py")))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mer-bench-memory-") as tmp:
        memory(Cache(args.cache), Path(args.params), Path(tmp))
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
