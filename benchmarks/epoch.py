"""Epoch benchmark: one training epoch of fold sub01, the official MMNet loop against ``mer.training.loop``.

Why: an epoch is what a user waits for; it is the data path (``data_path.py``) and the step (``step.py``)
together. Goal from issue 7: 3x the official epoch. Official: the re-implemented official loader (its faster
torch thread count, measured first) + the fp32 step (contiguous, AdamW for-loop). Ours: ``training_inputs``
with the paper's augmentation + the step ``mer.training.loop`` runs by default. Both alternate, warmed up
first; each figure is the best of the repetitions. The script PRINTS figures and asserts nothing.

Run from the repository root after ``dvc repro``: ``python benchmarks/epoch.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from common import BATCH, SIZE, SUBJECT, load, machine, timed
from data_path import clip_files, drain, official_batches, official_loader, our_batches
from step import BASELINE, Step, fake_batch, loop_default
from torch import Tensor

from mer.cache_store import Cache
from mer.training import allocator, inputs


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run or --quick."""

    clips: int | None  # None: the whole training fold
    batch: int
    reps: int


FULL = Plan(clips=None, batch=BATCH, reps=2)
QUICK = Plan(clips=16, batch=8, reps=1)


def epoch_seconds(batches: Iterator[tuple[Tensor, Tensor, Tensor]], step: Step) -> float:
    """Seconds of one training epoch: build each batch and step on it."""
    start = time.perf_counter()
    for motion, onset, labels in batches:
        step(motion, onset, labels)
    return time.perf_counter() - start


def faster_loader_threads(loader: torch.utils.data.DataLoader) -> int:
    """The torch thread count (1 or all) at which the official loader drains an epoch faster now: its per-frame
    ops are small, so threads gain ~15% on an idle machine and cost many times that on a busy one."""
    counts = sorted({1, torch.get_num_threads()})
    seconds = {threads: drain(official_batches(loader, threads)) for threads in counts}
    return min(seconds, key=seconds.__getitem__)


def epoch(cache: Cache, frames: Path, train_idx: np.ndarray, steps: dict[str, Step], ours: str, plan: Plan) -> None:
    """Alternate baseline and our epochs on the fold (or a subset); print s/sample and the ratio."""
    idx = train_idx if plan.clips is None else train_idx[: plan.clips]
    loader = official_loader(clip_files(frames, cache, idx), plan.batch)
    loader_threads = faster_loader_threads(loader)
    labels = torch.as_tensor(cache.labels[idx])
    generator = torch.Generator().manual_seed(1)
    official, load_s, our_s = [], [], []
    for _ in range(plan.reps):
        official.append(epoch_seconds(official_batches(loader, loader_threads), steps[BASELINE.name]))
        t, held = timed(lambda: inputs.load_frames(cache, idx, "difference", SIZE))
        load_s.append(t)
        our_s.append(epoch_seconds(our_batches(held, labels, plan.batch, generator), steps[ours]))
    n = len(idx)
    subset = "the whole training fold" if plan.clips is None else "a subset (--quick) of the fold"
    print(
        f"\nOne epoch: {n} clips ({subset}), batch {plan.batch}, {SIZE} px, full width, best of {plan.reps} alternating"
    )
    o, lo, ou = (min(x) for x in (official, load_s, our_s))
    print(f"official (loader at {loader_threads} torch thread(s) + fp32 step): {o:.1f} s = {o / n:.3f} s/sample")
    print(f"ours ({ours}): {ou:.1f} s = {ou / n:.3f} s/sample, + {lo:.2f} s one-time load")
    print(f"speed-up {o / ou:.2f}x per epoch ({o / (ou + lo):.2f}x for a first epoch including the load)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument("--quick", action="store_true", help="a 16-clip epoch at batch 8, one repetition")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(os.cpu_count() or 1)
    allocator.configure()  # as a fold's process does (mer.training.device.choose)
    random.seed(0)
    torch.manual_seed(0)
    cache = Cache(args.cache)
    train_idx, _ = cache.fold(SUBJECT)
    print(machine(("torch", "torchvision", "numpy", "h5py"), f", cv2 {cv2.__version__}"))
    started = time.perf_counter()
    steps = {variant.name: Step(variant) for variant in (BASELINE, loop_default())}
    for step in steps.values():  # warm up: the first steps allocate and pick kernels
        step(*fake_batch(plan.batch))
    with tempfile.TemporaryDirectory(prefix="mer-bench-epoch-") as tmp:
        epoch(cache, Path(tmp), train_idx, steps, loop_default().name, plan)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
