"""Training benchmark: this project's training path against the official MMNet training loop.

Why: the official code (github.com/muse1998/MMNet, ``CASME2_5.py``) decodes 9 image files and
runs PIL transforms for every sample of every epoch, and trains in fp32. This project holds the
fold in memory and augments whole batches (``mer.training.loop``). Goals from the issue: a data path
>= 20x faster than the official loader, and a model step >= 2.5x faster than the official fp32
step. Same model (``build_model("mmnet", 5, 3)``: full width, 224 x 224), same clips, same
batch size, same machine; baseline and ours alternate so that other load hits both. The script
PRINTS ratios measured in one run and asserts nothing about time.

1. Data path: ready training tensors per second. Baseline: a re-implementation of the official
   training set (9 ``cv2.imread`` per sample, PIL transforms per frame, 27-channel augmentation)
   in a ``DataLoader`` with ``num_workers=0``. Ours: ``mer.training.inputs.load_frames`` once, then
   ``mer.training.augment.training_inputs`` per batch.
2. Model step (forward + backward + AdamW step) at batch 8 and 32: fp32 baseline against
   channels_last, bf16 autocast, foreach / fused AdamW, all combined, and torch.compile (in a
   child process with a time limit).
3. One training epoch of the fold both ways (baseline loader + fp32 step; ours + the fastest
   step of 2.).
4. Peak RSS (the child's VmHWM, polled) of ``stages/train.py --subject sub01`` with params.yaml,
   and of one epoch at 224 px, full width, batch 32; extrapolated to a 255-clip (CASME II) fold.
5. With CUDA: samples/s with AMP. Without: the full CASME II LOSO time, COMPUTED from 2. and 1.

Run from the repository root after ``dvc repro``: ``python benchmarks/train.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from common import gemm_gflops, load, machine, vmhwm_mb
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from mer.cache_store import Cache, CacheWriter, ClipWindows
from mer.models import build_model
from mer.training import inputs
from mer.training.augment import STEP, Affine, Augment, ColourJitter, training_inputs
from mer.training.device import native_bf16

CPU = torch.device("cpu")
SUBJECT = "sub01"  # the fold measured, as `stages/train.py --subject sub01`
SIZE = 224
BATCH = 32  # the paper's batch size
CLASSES = 5  # CASME II 5-class, as the official CASME2_5.py
DATA_GOAL, STEP_GOAL = 20.0, 2.5
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BREAKDOWN_CLIPS = 8  # clips timed part by part (the multi-threaded pass is slow on a busy machine)
CASME2 = {"clips": 255, "folds": 26, "epochs": 70, "train_clips": 245}


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run or --quick."""

    data_reps: int
    step_batches: tuple[int, ...]
    warmup: dict[int, int]
    timed: dict[int, int]
    compile_limit: float  # seconds; 0 skips torch.compile
    epoch_clips: int | None  # None: the whole training fold
    epoch_batch: int
    epoch_reps: int


FULL = Plan(
    data_reps=5,
    step_batches=(8, 32),
    warmup={8: 2, 32: 1},
    timed={8: 3, 32: 2},
    compile_limit=240,
    epoch_clips=None,
    epoch_batch=BATCH,
    epoch_reps=2,
)
QUICK = Plan(
    data_reps=2,
    step_batches=(8,),
    warmup={8: 1},
    timed={8: 2},
    compile_limit=0,
    epoch_clips=16,
    epoch_batch=8,
    epoch_reps=1,
)


def best_ms(seconds: list[float], n: int) -> float:
    """Best of the repetitions, per sample, in ms: other processes only ever add time, and baseline
    and ours alternate, so the best of each is the fairest pair on a shared machine."""
    return 1e3 * min(seconds) / n


# ---------------------------------------------------------------- 1. data path


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


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


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


def data_path(cache: Cache, frames: Path, train_idx: np.ndarray, plan: Plan) -> dict[str, float]:
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
    print(f"\n1. Data path: {load()} at the start")
    for _ in range(plan.data_reps):
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
        f"fold {SUBJECT}, {n} training clips, batch {BATCH}, {SIZE} px, best of {plan.data_reps} alternating "
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
    parts = our_breakdown(frames, plan.data_reps)
    print(
        f"ours by part, 1 torch thread, {n} clips, best of {plan.data_reps} (ms/sample): "
        + ", ".join(f"{part} {value:.3f}" for part, value in parts.items())
    )
    print(f"1. ends: {load()}")
    return ms


# ---------------------------------------------------------------- 2. model step


@dataclass(frozen=True)
class Variant:
    name: str
    channels_last: bool = False
    autocast: torch.dtype | None = None  # bf16 on CPU; fp16 (with GradScaler) is CUDA AMP
    adamw: str = "for-loop"  # for-loop (foreach=False) | foreach | fused
    checkpointing: bool = False  # model.set_grad_checkpointing (train.grad_checkpointing)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def optimiser(self, params: Iterator[Tensor]) -> torch.optim.AdamW:
        """The official optimiser settings (lr 8e-4, weight decay 0.6) with this variant's kernel."""
        kernel = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[self.adamw]
        return torch.optim.AdamW(params, lr=8e-4, weight_decay=0.6, **kernel)


BASELINE = Variant("fp32 baseline (contiguous, AdamW foreach=False)")


class Step:
    """One MMNet training step of a variant; model and optimiser persist across calls, as in training."""

    def __init__(self, variant: Variant, device: torch.device = CPU, compiled: bool = False) -> None:
        torch.manual_seed(0)
        self.variant, self.device = variant, device
        self.model = build_model("mmnet", CLASSES, 3).to(device, memory_format=variant.memory_format)
        self.model.set_grad_checkpointing(variant.checkpointing)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.optimiser = variant.optimiser(self.model.parameters())
        self.scaler = torch.amp.GradScaler(device.type, enabled=variant.autocast == torch.float16)

    def __call__(self, motion: Tensor, onset: Tensor, labels: Tensor) -> Tensor:
        """The step on one batch; returns the logits (detached)."""
        fmt = self.variant.memory_format
        motion, onset = (x.to(self.device).contiguous(memory_format=fmt) for x in (motion, onset))
        autocast = (
            torch.autocast(self.device.type, dtype=self.variant.autocast)
            if self.variant.autocast
            else contextlib.nullcontext()
        )
        with autocast:
            logits = self.forward(motion, onset)
            loss = F.cross_entropy(logits.float(), labels.to(self.device))
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return logits.detach()


def fake_batch(batch: int) -> tuple[Tensor, Tensor, Tensor]:
    """Inputs of the right shape and range: timing does not depend on the pixel values."""
    generator = torch.Generator().manual_seed(batch)
    onset = torch.rand(batch, 3, SIZE, SIZE, generator=generator)
    motion = 0.1 * torch.randn(batch, 3, SIZE, SIZE, generator=generator)
    return motion, onset, torch.randint(0, CLASSES, (batch,), generator=generator)


def fused_adamw_supported() -> bool:
    try:
        parameter = torch.nn.Parameter(torch.ones(2))
        parameter.grad = torch.ones(2)
        torch.optim.AdamW([parameter], fused=True).step()
        return True
    except (RuntimeError, TypeError) as error:
        print(f"fused AdamW on CPU: not supported ({str(error).splitlines()[0]})")
        return False


def variants() -> list[Variant]:
    """Baseline, each option alone, and every supported option together."""
    bf16 = native_bf16(torch.device("cpu"))
    print(
        f"bf16 autocast: CPU {'has' if bf16 else 'lacks'} native bf16 (avx512_bf16 "
        f"{torch.cpu._is_avx512_bf16_supported()}, AMX {torch.cpu._is_amx_tile_supported()})"
        + ("" if bf16 else ": skipped, it would run emulated")
    )
    fused = fused_adamw_supported()
    found = [BASELINE, Variant("channels_last", channels_last=True)]
    if bf16:
        found.append(Variant("bf16 autocast", autocast=torch.bfloat16))
    found.append(Variant("foreach AdamW", adamw="foreach"))
    if fused:
        found.append(Variant("fused AdamW", adamw="fused"))
    combined = Variant(
        " + ".join(["channels_last"] + ["bf16"] * bf16 + [f"{'fused' if fused else 'foreach'} AdamW"]),
        channels_last=True,
        autocast=torch.bfloat16 if bf16 else None,
        adamw="fused" if fused else "foreach",
    )
    ours = Variant(
        f"mer.training.loop default (channels_last{' + bf16' * bf16})",
        channels_last=True,
        autocast=torch.bfloat16 if bf16 else None,
    )
    checkpointed = Variant(
        f"{ours.name[:-1]} + grad checkpointing)", channels_last=True, autocast=ours.autocast, checkpointing=True
    )
    return [*found, combined, ours, checkpointed]


def time_steps(steps: dict[str, Step], batch: int, warmup: int, reps: int) -> dict[str, list[float]]:
    """Seconds per step of every variant, the variants alternating within each repetition."""
    data = fake_batch(batch)
    for _ in range(warmup):
        for step in steps.values():
            step(*data)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            seconds[name].append(timed(lambda s=step: s(*data))[0])
    return seconds


def step_gflop(batch: int) -> float:
    """GFLOP of one step's forward + backward at `batch`, as torch's FlopCounterMode counts them (the
    convolutions and matmuls; the optimiser and elementwise work are not counted)."""
    model = build_model("mmnet", CLASSES, 3)
    motion, onset, labels = fake_batch(batch)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(motion, onset), labels).backward()
    return counter.get_total_flops() / 1e9


def gemm_peaks() -> dict[str, float]:
    """GEMM GFLOP/s per precision the variants use, measured now on the same threads."""
    peaks = {"fp32": gemm_gflops(torch.float32)}
    if native_bf16(CPU):
        peaks["bf16"] = gemm_gflops(torch.bfloat16)
    print("GEMM peak (2048^2 matmul, best of 5): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    return peaks


def print_steps(
    seconds: dict[str, list[float]],
    batch: int,
    reps: int,
    steps: dict[str, Step],
    gflop: float,
    peaks: dict[str, float],
) -> dict[str, float]:
    """The table of one batch size, with each variant's FLOP/s against the GEMM peak of the precision it runs
    in; returns the best s/step per variant."""
    best = {name: min(s) for name, s in seconds.items()}
    base = best[BASELINE.name]
    print(
        f"\nbatch {batch} ({reps} timed steps per variant, alternating; best of {reps}, median, max; "
        f"{gflop:.1f} GFLOP forward + backward per step)"
    )
    print(
        f"{'variant':<48}{'s/step':>8}{'median':>8}{'max':>7}{'s/sample':>10}{'x fp32':>8}{'GFLOP/s':>9}{'of GEMM':>9}"
    )
    for name, s in seconds.items():
        precision = "bf16" if steps[name].variant.autocast == torch.bfloat16 else "fp32"
        achieved = gflop / best[name]
        print(
            f"{name:<48}{best[name]:>8.2f}{statistics.median(s):>8.2f}{max(s):>7.2f}{best[name] / batch:>10.3f}"
            f"{base / best[name]:>8.2f}{achieved:>9.1f}{achieved / peaks[precision]:>8.0%} {precision}"
        )
    return best


def model_step(plan: Plan) -> tuple[dict[str, Step], dict[int, dict[str, float]]]:
    """Print the variant tables; return the (warmed) steps and best s/step per batch and variant."""
    print(
        f"\n2. Model step: MMNet full width, {SIZE} px, forward + backward + AdamW step, CPU, "
        f"{torch.get_num_threads()} torch threads. mer.training.loop runs channels_last, with bf16 autocast where "
        f"the CPU has native bf16 (train.precision auto) and AdamW's default (the for-loop kernel on CPU)"
    )
    steps = {v.name: Step(v) for v in variants()}
    peaks = gemm_peaks()
    bests = {}
    for batch in plan.step_batches:
        seconds = time_steps(steps, batch, plan.warmup[batch], plan.timed[batch])
        bests[batch] = print_steps(seconds, batch, plan.timed[batch], steps, step_gflop(batch), peaks)
    for batch, best_s in bests.items():
        best = min(best_s, key=best_s.get)
        ratio = best_s[BASELINE.name] / best_s[best]
        print(
            f"batch {batch}: fastest is {best}, {ratio:.2f}x the official fp32 step: goal >= {STEP_GOAL}x "
            f"{'MET' if ratio >= STEP_GOAL else 'NOT met'}"
        )
    return steps, bests


def compiled_step(variant: Variant, batch: int, reps: int, cache_dir: str) -> dict[str, float | list[float]]:
    """In a child process: compile time, then eager and compiled steps of `variant`, alternating."""
    import torch._inductor.config as inductor_config

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_dir  # a cold cache: the first compile on a machine
    torch.set_num_threads(os.cpu_count() or 1)
    inductor_config.compile_threads = 1  # no compile worker pool to outlive a killed child
    data = fake_batch(batch)
    eager, compiled = Step(variant), Step(variant, compiled=True)
    eager(*data)
    compile_s = timed(lambda: compiled(*data))[0]
    compiled(*data)
    seconds: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(reps):
        seconds["eager"].append(timed(lambda: eager(*data))[0])
        seconds["compiled"].append(timed(lambda: compiled(*data))[0])
    return {"compile_s": compile_s, **seconds}


def _run_and_send(send: Connection, function: Callable, args: tuple) -> None:
    try:
        send.send(("ok", function(*args)))
    except Exception as error:  # sent as text: inductor's exceptions need not pickle
        send.send(("error", f"{type(error).__name__}: {str(error).strip()[:300]}"))


def in_child(function: Callable, args: tuple, timeout: float | None = None) -> object:
    """function(*args) in a fresh spawned process: its own RSS, and a compile that can be killed.

    Raises TimeoutError (the child is killed) or RuntimeError (the child failed or died)."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_and_send, args=(send, function, args))
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            child.kill()
            raise TimeoutError(f"no result within {timeout:.0f} s")
        status, value = receive.recv()
    except EOFError:
        status, value = "error", "the child died without a result"
    finally:
        child.join()
    if status == "error":
        raise RuntimeError(value)
    return value


def try_compile(variant: Variant, batch: int, reps: int, limit: float, tmp: Path) -> None:
    """torch.compile (inductor) of `variant` in a spawned child, killed after `limit` seconds."""
    print(f"\ntorch.compile of '{variant.name}', batch {batch}, cold inductor cache, time limit {limit:.0f} s:")
    if limit <= 0:
        print("skipped with --quick (compiling MMNet's training graph took 60-90 s on this machine)")
        return
    try:
        r = in_child(compiled_step, (variant, batch, reps, str(tmp / "inductor")), timeout=limit)
    except TimeoutError:
        print(f"no result within {limit:.0f} s: compile plus {reps} steps took too long; child killed")
        return
    except RuntimeError as error:
        print(f"failed: {str(error).splitlines()[0]}")
        return
    eager, compiled = min(r["eager"]), min(r["compiled"])
    print(
        f"first call (compile + step) {r['compile_s']:.1f} s; then eager {eager:.2f} s/step, compiled "
        f"{compiled:.2f} s/step (best of {reps} alternating steps): compiled is {eager / compiled:.2f}x eager "
        f"({'faster' if compiled < eager else 'SLOWER'})"
    )


# ---------------------------------------------------------------- 3. epoch


def epoch_seconds(batches: Iterator[tuple[Tensor, Tensor, Tensor]], step: Step) -> float:
    """Seconds of one training epoch: build each batch and step on it."""
    start = time.perf_counter()
    for motion, onset, labels in batches:
        step(motion, onset, labels)
    return time.perf_counter() - start


def epoch(
    cache: Cache,
    frames: Path,
    train_idx: np.ndarray,
    steps: dict[str, Step],
    best: str,
    loader_threads: int,
    plan: Plan,
) -> dict[str, float]:
    """Alternate baseline and our epochs on the fold (or a subset); print and return s/sample.
    The official batches are built with `loader_threads` (the faster count of section 1)."""
    idx = train_idx if plan.epoch_clips is None else train_idx[: plan.epoch_clips]
    loader = official_loader(clip_files(frames, cache, idx), plan.epoch_batch)
    labels = torch.as_tensor(cache.labels[idx])
    generator = torch.Generator().manual_seed(1)
    official, load, ours = [], [], []
    for _ in range(plan.epoch_reps):
        official.append(epoch_seconds(official_batches(loader, loader_threads), steps[BASELINE.name]))
        t, frames = timed(lambda: inputs.load_frames(cache, idx, "difference", SIZE))
        load.append(t)
        ours.append(epoch_seconds(our_batches(frames, labels, plan.epoch_batch, generator), steps[best]))
    n = len(idx)
    subset = "the whole training fold" if plan.epoch_clips is None else "a subset (--quick) of the fold"
    print(
        f"\n3. One epoch: {n} clips ({subset}), batch {plan.epoch_batch}, {SIZE} px, full width, "
        f"best of {plan.epoch_reps} alternating"
    )
    o, lo, ou = (min(x) for x in (official, load, ours))
    print(f"official (loader at {loader_threads} torch thread(s) + fp32 step): {o:.1f} s = {o / n:.3f} s/sample")
    print(f"ours ({best}): {ou:.1f} s = {ou / n:.3f} s/sample, + {lo:.2f} s one-time load")
    print(f"speed-up {o / ou:.2f}x per epoch ({o / (ou + lo):.2f}x for a first epoch including the load)")
    return {"official": o / n, "ours": ou / n}


# ---------------------------------------------------------------- 4. peak RSS


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
    print("\n4. Peak RSS (VmHWM of the child, polled every 20 ms)")
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


# ---------------------------------------------------------------- 5. CUDA or computed LOSO time


def cuda_amp(reps: int) -> None:
    """Samples/s of the fp32 step and of AMP (fp16 autocast + GradScaler, channels_last) on the GPU."""
    device = torch.device("cuda")
    steps = {
        "fp32": Step(BASELINE, device),
        "AMP": Step(Variant("AMP", channels_last=True, autocast=torch.float16), device),
    }
    seconds = time_steps(steps, BATCH, 3, reps)
    print(
        f"\n5. CUDA ({torch.cuda.get_device_name(device)}), batch {BATCH}: "
        + ", ".join(f"{name} {BATCH / min(s):.1f} samples/s" for name, s in seconds.items())
    )


def loso_estimate(step_s: dict[str, float], data_ms: dict[str, float], batch: int) -> None:
    """Full CASME II LOSO training time, COMPUTED from the per-sample figures measured above."""
    samples = CASME2["folds"] * CASME2["epochs"] * CASME2["train_clips"]
    print(
        f"\n5. No CUDA. Expected full CASME II LOSO training on this CPU, COMPUTED (not measured): "
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


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument(
        "--quick", action="store_true", help="batch 8 only, no torch.compile, a 16-clip epoch at batch 8: ~3 min"
    )
    parser.add_argument("--only-data", action="store_true", help="section 1 (data path) only: ~1 min")
    args = parser.parse_args()

    plan = QUICK if args.quick else FULL
    torch.set_num_threads(os.cpu_count() or 1)
    random.seed(0)
    torch.manual_seed(0)
    cache = Cache(args.cache)
    train_idx, _ = cache.fold(SUBJECT)
    print(machine(("torch", "torchvision", "numpy", "h5py"), f", cv2 {cv2.__version__}"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mer-bench-train-") as tmp:
        frames = Path(tmp) / "frames"
        frames.mkdir()
        data_ms = data_path(cache, frames, train_idx, plan)
        if args.only_data:
            print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")
            return
        steps, bests = model_step(plan)
        batch = max(plan.step_batches)
        best = min(bests[batch], key=bests[batch].get)
        try_compile(steps[best].variant, 8, 3, plan.compile_limit, Path(tmp))
        epoch(cache, frames, train_idx, steps, best, int(data_ms["official_threads"]), plan)
        del steps  # ~1 GB of models and optimiser state the memory children need not compete with
        memory(cache, Path(args.params), Path(tmp))
        if torch.cuda.is_available():
            cuda_amp(plan.timed[batch])
        else:
            step_s = {"official": bests[batch][BASELINE.name], "ours": bests[batch][best]}
            loso_estimate(step_s, data_ms, batch)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
