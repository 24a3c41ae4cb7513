"""Full CASME II LOSO on this machine: samples/s with AMP on a GPU, or the training time computed on a CPU.

Why: a user wants to know how long the paper's protocol takes here (26 folds x 70 epochs x ~245 training
clips). With CUDA the script measures the step in fp32 and with AMP (fp16 autocast + GradScaler,
channels_last). Without CUDA it says why that part is skipped and COMPUTES (does not measure) the full LOSO
training time from the per-sample figures of the data path (``data_path.py``) and the step (``step.py``)
measured in this run, for the official loop and ours; evaluation is left out.

Run from the repository root after ``dvc repro``: ``python benchmarks/loso.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import cv2
import torch
from common import BATCH, CASME2, SUBJECT, load, machine
from data_path import data_path
from step import BASELINE, Step, Variant, loop_default, time_steps

from mer.cache_store import Cache
from mer.training import allocator

REPS = {"full": {"data": 3, "warmup": 1, "steps": 2}, "quick": {"data": 1, "warmup": 1, "steps": 1}}


def cuda_amp(reps: int) -> None:
    """Samples/s of the fp32 step and of AMP (fp16 autocast + GradScaler, channels_last) on the GPU."""
    device = torch.device("cuda")
    steps = {
        "fp32": Step(BASELINE, device),
        "AMP": Step(Variant("AMP", channels_last=True, autocast=torch.float16), device),
    }
    seconds = time_steps(steps, BATCH, 3, reps)
    print(
        f"\nCUDA ({torch.cuda.get_device_name(device)}), batch {BATCH}: "
        + ", ".join(f"{name} {BATCH / min(s):.1f} samples/s" for name, s in seconds.items())
    )


def loso_estimate(step_s: dict[str, float], data_ms: dict[str, float], batch: int) -> None:
    """Full CASME II LOSO training time, COMPUTED from the per-sample figures measured above."""
    samples = CASME2["folds"] * CASME2["epochs"] * CASME2["train_clips"]
    print(
        f"\nExpected full CASME II LOSO training on this CPU, COMPUTED (not measured): "
        f"{CASME2['folds']} folds x {CASME2['epochs']} epochs x ~{CASME2['train_clips']} training clips = "
        f"{samples} samples x (best step s/sample at batch {batch} + data path s/sample, the load spread over "
        f"{CASME2['epochs']} epochs); evaluation not included; best-of-n figures, so for an otherwise idle machine"
    )
    data_s = {
        "official": data_ms["official"] / 1e3,
        "ours": (data_ms["ours"] + data_ms["load"] / CASME2["epochs"]) / 1e3,
    }
    for name in ("official", "ours"):
        per_sample = step_s[name] / batch + data_s[name]
        print(
            f"{name}: {per_sample:.3f} s/sample -> {samples * per_sample / 3600:.0f} h "
            f"({samples * per_sample / 86400:.1f} days)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument("--quick", action="store_true", help="one repetition of each measurement")
    args = parser.parse_args()
    reps = REPS["quick" if args.quick else "full"]
    torch.set_num_threads(os.cpu_count() or 1)
    allocator.configure()  # as a fold's process does (mer.training.device.choose)
    random.seed(0)
    torch.manual_seed(0)
    print(machine(("torch", "torchvision", "numpy", "h5py"), f", cv2 {cv2.__version__}"))
    started = time.perf_counter()
    if torch.cuda.is_available():
        cuda_amp(reps["steps"])
    else:
        print("\nNo CUDA device (torch.cuda.is_available() is False): the AMP measurement is skipped")
        cache = Cache(args.cache)
        train_idx, _ = cache.fold(SUBJECT)
        with tempfile.TemporaryDirectory(prefix="mer-bench-loso-") as tmp:
            data_ms = data_path(cache, Path(tmp), train_idx, reps["data"])
        steps = {"official": Step(BASELINE), "ours": Step(loop_default())}
        seconds = time_steps(steps, BATCH, reps["warmup"], reps["steps"])
        loso_estimate({name: min(s) for name, s in seconds.items()}, data_ms, BATCH)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
