"""Data path benchmark: ready training tensors per second, ours against the official MMNet loader.

Why: the official code (github.com/muse1998/MMNet, ``CASME2_5.py``) decodes 9 image files and runs PIL
transforms for every sample of every epoch. This project holds the fold in memory and augments whole batches
(``mer.training.loop``). Goal from issue 7: a data path >= 20x faster than the official loader. Same clips
(fold sub01), same batch, same machine; baseline and ours alternate so that other load hits both. The script
PRINTS ratios measured in one run and asserts nothing about time.

Baseline: a re-implementation of the official training set (9 ``cv2.imread`` per sample, PIL transforms per
frame, 27-channel augmentation) in a ``DataLoader`` with ``num_workers=0``. Ours:
``mer.training.inputs.load_frames`` once, then ``mer.training.augment.training_inputs`` per batch. Both at 1
and all torch threads, then each side part by part. ``epoch.py`` and ``loso.py`` build on these functions.

Run from the repository root after ``dvc repro``: ``python benchmarks/data_path.py [--quick]``.
"""

from __future__ import annotations

import argparse
import math
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
from common import BATCH, SIZE, SUBJECT, best_ms, load, machine, timed, torch_threads
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mer.cache_store import Cache
from mer.training import inputs
from mer.training.augment import STEP, Affine, Augment, ColourJitter, training_inputs

DATA_GOAL = 20.0
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BREAKDOWN_CLIPS = 8  # clips timed part by part (the multi-threaded pass is slow on a busy machine)
REPS = {"full": 5, "quick": 2}  # alternating epochs per side


@dataclass(frozen=True)
class ClipFiles:
    onset: list[Path]  # the onset window's cropped frames, as PNG files
    apex: list[Path]
    label: int


def clip_files(folder: Path, cache: Cache, indices: np.ndarray) -> list[ClipFiles]:
    """The clips' window frames as image files, the input the official loader reads: written once from the
    cache into `folder` (the pipeline keeps its crops in HDF5), as PNG like the official code's crops."""
    onset, apex = cache.load("onset", indices), cache.load("apex", indices)
    clips = []
    for n, i in enumerate(indices):
        files = {}
        for name, frames in (("onset", onset[n]), ("apex", apex[n])):
            files[name] = [folder / f"{i}-{name}{k}.png" for k in range(len(frames))]
            for path, frame in zip(files[name], frames, strict=True):
                if not path.exists():
                    cv2.imwrite(str(path), np.ascontiguousarray(frame[..., ::-1]))
        clips.append(ClipFiles(files["onset"], files["apex"], int(cache.labels[i])))
    return clips


class OfficialTrainSet(Dataset):
    """The official training set (``RafDataSet``, phase 'train'), re-implemented on the cropped frames.

    The official code reads 9 distinct frames per sample (onset, 3 between onset and apex, apex,
    4 between apex and offset; drawn with a little jitter) and feeds only onset and apex to the
    model. The crop stage keeps just the 4 + 4 window frames, so the 9 reads here are: the onset
    window (the drawn onset first, as on0), the drawn apex (apex0), and the apex window, which
    reads apex0's file a second time. Every read is a 224 x 224 PNG; each frame goes through
    ToPILImage -> Resize -> ToTensor -> Normalize, the 9 are stacked to 27 channels and flipped,
    rotated (3 degrees) and cropped (padding 15) together, as the official ``transform_norm``.
    """

    def __init__(self, clips: list[ClipFiles], size: int) -> None:
        self.clips = clips
        self.frame = transforms.Compose(
            [
                transforms.ToPILImage(),
                transforms.Resize((size, size)),
                transforms.ToTensor(),
                transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
        self.augment = transforms.Compose(
            [
                transforms.RandomHorizontalFlip(0.5),
                transforms.RandomRotation(3),
                transforms.RandomCrop(size, padding=15),
            ]
        )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple:
        clip = self.clips[i]
        on = random.randrange(len(clip.onset))
        paths = [clip.onset[on], *clip.onset[:on], *clip.onset[on + 1 :], random.choice(clip.apex), *clip.apex]
        frames = [self.frame(cv2.imread(str(path))[:, :, ::-1]) for path in paths]  # BGR -> RGB
        return (*self.augment(torch.cat(frames)).split(3), clip.label)


def official_loader(clips: list[ClipFiles], batch: int) -> DataLoader:
    """As the official script builds it, with workers=0 (its default)."""
    return DataLoader(
        OfficialTrainSet(clips, SIZE),
        batch_size=batch,
        shuffle=True,
        num_workers=0,
        pin_memory=torch.cuda.is_available(),
    )


def official_batches(loader: DataLoader, threads: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """(motion, onset, labels) per batch (the official forward takes apex0 - on0 and on0), built
    with `threads` torch threads: the per-frame ops are small, so threads gain little on an idle
    machine, and while other processes hold the cores OpenMP barriers make them many times slower.
    """
    batches = iter(loader)
    while True:
        with torch_threads(threads):
            batch = next(batches, None)
            if batch is None:
                return
            *frames, labels = batch
            ready = frames[4] - frames[0], frames[0], labels
        yield ready


def our_batches(
    frames: inputs.FoldFrames, labels: Tensor, batch: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """(motion, onset, labels) per batch, as `mer.training.loop.train_fold` builds them (paper augmentation)."""
    for rows in torch.randperm(len(frames), generator=generator).split(batch):
        motion, onset = training_inputs(frames, rows, "difference", Augment(), generator)
        yield motion, onset, labels[rows]


def drain(batches: Iterator) -> float:
    """Seconds to produce every batch of an epoch."""
    start = time.perf_counter()
    for _ in batches:
        pass
    return time.perf_counter() - start


def official_breakdown(clips: list[ClipFiles], threads: int) -> dict[str, float]:
    """ms/sample of the official loader's parts with `threads` torch threads (where its time goes)."""
    dataset = OfficialTrainSet(clips, SIZE)
    seconds = {"9 x cv2.imread + BGR->RGB": 0.0, "9 x PIL/ToTensor/Normalize": 0.0, "27-channel augment": 0.0}
    with torch_threads(threads):
        for clip in clips:
            paths = [*clip.onset, clip.apex[0], *clip.apex]
            t, images = timed(lambda ps=paths: [cv2.imread(str(p))[:, :, ::-1] for p in ps])
            seconds["9 x cv2.imread + BGR->RGB"] += t
            t, frames = timed(lambda ims=images: torch.cat([dataset.frame(im) for im in ims]))
            seconds["9 x PIL/ToTensor/Normalize"] += t
            seconds["27-channel augment"] += timed(lambda f=frames: dataset.augment(f))[0]
    return {part: 1e3 * s / len(clips) for part, s in seconds.items()}


class Laps:
    """Wall time between calls, added up per named part."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part] = self.seconds.get(part, 0.0) + now - self.last
        self.last = now


def our_breakdown(frames: inputs.FoldFrames, reps: int) -> dict[str, float]:
    """ms/sample of our parts, best of `reps` epochs: the steps of `mer.training.augment.training_inputs`
    for kind 'difference', restated here to time them one by one, with 1 torch thread (with more,
    training_inputs runs these same steps single-threaded in as many worker threads)."""
    generator = torch.Generator().manual_seed(2)
    augment = Augment()
    best: dict[str, float] = {}
    with torch_threads(1):
        for _ in range(reps):
            laps = Laps()
            for rows in torch.randperm(len(frames), generator=generator).split(BATCH):
                laps.last = time.perf_counter()
                n = len(rows)
                onset_at, apex_at = (torch.randint(0, frames.window, (n,), generator=generator) for _ in range(2))
                colour = ColourJitter.draw(n, augment.colour, generator)
                affine = Affine.draw(n, SIZE, augment, generator)
                motion, onset = torch.empty(n, 3, SIZE, SIZE), torch.empty(n, 3, SIZE, SIZE)
                laps("draw parameters, allocate the batch")
                for begin in range(0, n, STEP):
                    clips = slice(begin, begin + STEP)
                    batch = inputs.select(frames, rows[clips], onset_at[clips], apex_at[clips], rgb=colour[clips].apply)
                    laps("gather pair + colour jitter")
                    warped = affine[clips].warp(batch.rgb.flatten(1, 2))
                    laps("warp (grid + grid_sample)")
                    torch.sub(warped[:, 3:], warped[:, :3], out=motion[clips])
                    onset[clips] = warped[:, :3]
                    laps("motion + onset into the batch")
            best = {part: min(best.get(part, math.inf), 1e3 * s / len(frames)) for part, s in laps.seconds.items()}
    return best


def data_path(cache: Cache, frames: Path, train_idx: np.ndarray, reps: int) -> dict[str, float]:
    """Alternate official epochs and our load + epoch, each side with 1 and all torch threads; print
    ms/sample and ratios; return ms/sample, each side at its faster thread count."""
    clips = clip_files(frames, cache, train_idx)
    labels = torch.as_tensor(cache.labels[train_idx])
    loader = official_loader(clips, BATCH)
    generator = torch.Generator().manual_seed(0)
    counts = sorted({1, torch.get_num_threads()})
    official: dict[int, list[float]] = {threads: [] for threads in counts}
    ours: dict[int, list[float]] = {threads: [] for threads in counts}
    loads = []
    print(f"\nData path: {load()} at the start")
    for _ in range(reps):
        for threads in counts:
            official[threads].append(drain(official_batches(loader, threads)))
        t, frames = timed(lambda: inputs.load_frames(cache, train_idx, "difference", SIZE))
        loads.append(t)
        for threads in counts:
            with torch_threads(threads):
                ours[threads].append(drain(our_batches(frames, labels, BATCH, generator)))
    n = len(train_idx)
    official_ms = {threads: best_ms(seconds, n) for threads, seconds in official.items()}
    our_ms = {threads: best_ms(seconds, n) for threads, seconds in ours.items()}
    fastest, our_fastest = min(official_ms, key=official_ms.get), min(our_ms, key=our_ms.get)
    ms = {
        "official": official_ms[fastest],
        "official_threads": fastest,
        "load": best_ms(loads, n),
        "ours": our_ms[our_fastest],
    }
    print(
        f"fold {SUBJECT}, {n} training clips, batch {BATCH}, {SIZE} px, best of {reps} alternating "
        f"epochs; each side at 1 and {torch.get_num_threads()} torch threads, the faster counts"
    )
    print(f"{'':<62}{'ms/sample':>10}{'samples/s':>11}")
    rows = (
        *(
            (f"official loader (9 reads, PIL, workers=0), {threads} torch thread(s)", value)
            for threads, value in official_ms.items()
        ),
        *(
            (f"ours, per epoch (training_inputs), {threads} torch thread(s)", value)
            for threads, value in our_ms.items()
        ),
        ("ours, one-time load (load_frames)", ms["load"]),
        ("ours, first epoch including the load", ms["load"] + ms["ours"]),
        ("ours, 70 epochs, load amortised", ms["load"] / 70 + ms["ours"]),
    )
    for name, value in rows:
        print(f"{name:<62}{value:>10.3f}{1e3 / value:>11.0f}")
    ratio = ms["official"] / ms["ours"]
    print(
        f"official at {fastest} thread(s) against ours at {our_fastest}: speed-up per epoch {ratio:.1f}x, first "
        f"epoch with the load {ms['official'] / (ms['load'] + ms['ours']):.1f}x: "
        f"goal >= {DATA_GOAL:.0f}x {'MET' if ratio >= DATA_GOAL else 'NOT met'}"
    )
    for threads in counts:
        parts = official_breakdown(clips[:BREAKDOWN_CLIPS], threads)
        print(
            f"official loader by part, {threads} torch thread(s), {BREAKDOWN_CLIPS} clips (ms/sample): "
            + ", ".join(f"{part} {value:.2f}" for part, value in parts.items())
        )
    parts = our_breakdown(frames, reps)
    print(
        f"ours by part, 1 torch thread, {n} clips, best of {reps} (ms/sample): "
        + ", ".join(f"{part} {value:.3f}" for part, value in parts.items())
    )
    print(f"data path ends: {load()}")
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument("--quick", action="store_true", help=f"best of {REPS['quick']} epochs, not {REPS['full']}")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    random.seed(0)
    torch.manual_seed(0)
    cache = Cache(args.cache)
    train_idx, _ = cache.fold(SUBJECT)
    print(machine(("torch", "torchvision", "numpy", "h5py"), f", cv2 {cv2.__version__}"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mer-bench-data-") as tmp:
        data_path(cache, Path(tmp), train_idx, REPS["quick" if args.quick else "full"])
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
