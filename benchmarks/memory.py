"""Memory benchmark: peak RSS of a fold, what each piece of it costs, and the paper fold against 3 GB.

Why: a paper fold (CASME II size, full MMNet at 224 px, batch 32) should fit a laptop or a cluster task's memory
request without the user turning anything on (issue 25: <= 3000 MB with ``precision: auto``). Peak RSS is the
child's VmHWM, read from /proc/<pid>/status every 20 ms (not ru_maxrss: Linux carries that across fork + exec).

1. ``stages/train.py --subject sub01`` with params.yaml (the default run's fold).
2. A CASME II-sized cache: 255 clips cycling the real ones under new subject names, so fold sub01 trains on 247
   and tests on its own 8. The same command on it at the paper's scale (224 px, full width, batch 32, padding
   15, one epoch) in ``precision: fp32``, in ``auto`` (bf16 on a bf16 CPU: THE GOAL, met / not met), in ``auto``
   with glibc's mmap threshold at its dynamic maximum (32 MB, roughly glibc's default once a few steps have
   raised it: what ``mer.training.allocator`` avoids) and in ``auto`` with ``grad_checkpointing``.
3. Where the ``auto`` fold's memory goes: the same fold in a child that resets its peak (/proc/self/clear_refs)
   at each phase and prints the phase's peak and the RSS at its end: the interpreter with numpy, h5py and
   yaml; torch; mer's training modules; the fold's data; model and optimiser; the training steps; evaluation.

Run from the repository root after ``dvc repro``: ``python benchmarks/memory.py``. Peak RSS barely depends on
the machine's load, so it can be measured beside other work (only the wall times then grow).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from common import BATCH, CASME2, SIZE, SUBJECT, load, machine, vmhwm_mb

from mer.cache_store import Cache, CacheWriter, ClipWindows

MEMORY_GOAL_MB = 3000
PAPER_RUNS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {  # name: (train keys, environment)
    "precision fp32": ({"precision": "fp32"}, {}),
    "precision auto (the default)": ({"precision": "auto"}, {}),
    "precision auto, glibc mmap threshold 32 MB": ({"precision": "auto"}, {"MALLOC_MMAP_THRESHOLD_": str(2**25)}),
    "precision auto + grad_checkpointing": ({"precision": "auto", "grad_checkpointing": True}, {}),
}
GOAL_RUN = "precision auto (the default)"


def peak_rss(command: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(peak RSS MB, seconds) of a child, polled every 20 ms: VmHWM only grows, the last reading is the peak."""
    start, peak = time.perf_counter(), 0.0
    with open(log, "w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
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
    with CacheWriter(path, clips, cache.window, cache.size, cache.classes, False, cache.params) as writer:
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
    return path


class Phases:
    """Peak RSS and RSS at the end of each named phase of this process; the peak is reset at each change."""

    def __init__(self, first: str) -> None:
        self.current = first
        self.figures: dict[str, list[float]] = {}  # phase: [peak MB, RSS at its last end MB]

    def __call__(self, next_phase: str) -> None:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        peak, rss = (int(status[key].split()[0]) / 1024 for key in ("VmHWM", "VmRSS"))
        before = self.figures.get(self.current, [0.0, 0.0])
        self.figures[self.current] = [max(before[0], peak), rss]
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.current = next_phase

    def around(self, function: Callable, during: str, after: str) -> Callable:
        """`function`, with phase `during` while it runs and `after` once it returns."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self(during)
            result = function(*args, **kwargs)
            self(after)
            return result

        return wrapped


def fold_phases(params_path: str, cache_path: str) -> None:
    """In a fresh process (`--phases`): fold SUBJECT as `stages/train.py` trains it, its phases marked by
    wrapping the loop's own calls; prints the figures as one JSON line."""
    mark = Phases("interpreter, numpy, h5py, yaml, psutil")
    mark("import torch")
    import torch

    mark("import the fold stage's modules")
    from mer import fold_store
    from mer.training import live, loop  # noqa: F401 (live: imported by the stage, DVCLive)

    mark("fold stage set-up")
    loop.inputs.load_fold = mark.around(
        loop.inputs.load_fold, "fold data (loaded and held)", "fold data (loaded and held)"
    )
    loop.build = mark.around(loop.build, "model + optimiser", "model + optimiser")
    loop.training_inputs = mark.around(loop.training_inputs, "training steps", "training steps")
    loop.predict = mark.around(loop.predict, "evaluation", "after evaluation")
    params = yaml.safe_load(Path(params_path).read_text())
    settings = {k: v for k, v in params["input"].items() if k != "file"}
    train = loop.fold_config(params["train"], fold_store.seeds_of(params["train"])[0])
    cache = Cache(cache_path)
    loop.train_fold(cache, SUBJECT, "mmnet", {}, loop.InputConfig(**settings), train, log=lambda _: None)
    mark("end")
    print(json.dumps({"threads": torch.get_num_threads(), **mark.figures}))


def print_phases(figures: dict[str, Any]) -> None:
    """The phase table, and the pieces: what each phase adds to the RSS held, and a step's activations."""
    print(f"{'phase':<40}{'peak MB':>9}{'RSS at end MB':>15}{'held added MB':>15}")
    held = 0.0
    for phase, (peak, rss) in ((k, v) for k, v in figures.items() if k != "threads"):
        print(f"{phase:<40}{peak:>9.0f}{rss:>15.0f}{rss - held:>+15.0f}")
        held = rss
    steps, model = figures["training steps"][0], figures["model + optimiser"][1]
    print(
        f"a training step's activations and gradients: the steps' peak {steps:.0f} MB less the RSS before them "
        f"{model:.0f} MB = {steps - model:.0f} MB; evaluation peaks {figures['evaluation'][0]:.0f} MB"
    )


def memory(cache: Cache, params_path: Path, tmp: Path) -> None:
    """Peak RSS of the default fold and of the paper fold at CASME II's size, and where the latter's goes."""
    params = yaml.safe_load(params_path.read_text())
    default, default_s = peak_rss(train_command(params_path, cache.path, tmp / "default"), tmp / "default.log")
    print("\nPeak RSS (VmHWM of the child, polled every 20 ms)")
    print(
        f"stages/train.py --subject {SUBJECT}, params.yaml ({params['input']['size']} px, "
        f"{params['model']['options']}, batch {params['train']['batch_size']}, {params['train']['epochs']} epochs): "
        f"{default:.0f} MB ({default_s:.0f} s)"
    )
    big = replicated_cache(cache, tmp / "casme2-size.h5", CASME2["clips"])
    train, test = (len(indices) for indices in Cache(big).fold(SUBJECT))
    print(
        f"\nA {CASME2['clips']}-clip (CASME II-sized) cache, the real clips cycled: fold {SUBJECT} trains on {train} "
        f"clips and tests on {test}; one epoch at {SIZE} px, full-width MMNet, batch {BATCH} ({load()})"
    )
    for run, (name, (keys, env)) in enumerate(PAPER_RUNS.items()):
        paper_yaml = paper_params(params, tmp / f"paper{run}.yaml", **keys)
        peak, seconds = peak_rss(
            train_command(paper_yaml, big, tmp / f"paper{run}"), tmp / f"paper{run}.log", {**os.environ, **env}
        )
        verdict = f": goal <= {MEMORY_GOAL_MB} MB {'MET' if peak <= MEMORY_GOAL_MB else 'NOT met'}" * (name == GOAL_RUN)
        print(f"{name:<48}{peak:>6.0f} MB ({seconds:.0f} s){verdict}")
    paper_yaml = paper_params(params, tmp / "phases.yaml", precision="auto")
    done = subprocess.run(
        [sys.executable, __file__, "--phases", str(paper_yaml), str(big)], capture_output=True, text=True, check=True
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nWhere the default paper fold's memory goes ({figures['threads']} threads; peak reset at each phase):")
    print_phases(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument("--phases", nargs=2, metavar=("PARAMS", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases:
        fold_phases(*args.phases)
        return
    print(machine(("torch", "numpy", "h5py")))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mer-bench-memory-") as tmp:
        memory(Cache(args.cache), Path(args.params), Path(tmp))
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
