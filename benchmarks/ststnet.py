"""STSTNet LOSO on MEGC 2019's 442 precomputed 28x28 inputs (issue 24): where a fold's time goes, and what the
68 folds of one seed cost at the source's 500 epochs.

Prints, on a cache of 442 clips of 3x28x28 inputs in 68 subjects (random values: the time does not depend on
them; `--real <HTNet clone>` reads the published images instead):
1. a fold's fixed cost: a fold stage's process run for 1 epoch, less one epoch of training, i.e. the interpreter,
   the imports (torch alone timed beside it), the cache read and the model build;
2. the training step (batch 32, forward + backward + Adam) at 1 and 2 threads, and an epoch (14 steps and the
   test pass) through the loop as a fold runs it;
3. the 68-fold estimate at 500 epochs: one fold after another (`dvc repro`), and 2 at a time (`mer launch
   --workers 2`, 1 thread each), beside the 15-minute goal.

    python benchmarks/ststnet.py [--real ../HTNet]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import PROJECT, load, machine

from mer.cache_store import Cache, write_precomputed
from mer.models import build_model
from mer.training import augment, loop

CLIPS, SUBJECTS, EPOCHS, BATCH = 442, 68, 500, 32


def synthetic_cache(path: Path) -> Cache:
    rng = np.random.default_rng(0)
    motion = rng.random((CLIPS, 3, 28, 28), dtype=np.float32)
    clips = [(f"s{i % SUBJECTS:02d}/c{i}", f"s{i % SUBJECTS:02d}", int(i % 3)) for i in range(CLIPS)]
    write_precomputed(path, motion, clips, ["negative", "positive", "surprise"], {"dataset": {"name": "benchmark"}})
    return Cache(path)


def real_cache(clone: Path, path: Path) -> Cache:
    """The published images through the project's own reader and writer (mer.datasets.precomputed)."""
    from mer.datasets import precomputed

    table = {"subject": "sub", "clip": "filename_o", "label": "label", "part": "dataset"}
    table |= {"file": "{sub}_{filename_o} .png", "size": 28, "channels": 3}
    result = precomputed.read(
        clone / "datasets/STSNet_whole_norm_u_v_os", clone / "combined_3_class2_for_optical_flow.csv", table=table
    )
    motion = np.stack([precomputed.load_input(c.frames[0], 28, 3) for c in result.clips])
    rows = [(c.sample_id, c.subject, int(c.emotion)) for c in result.clips]
    write_precomputed(path, motion, rows, ["negative", "positive", "surprise"], {"dataset": {"name": "megc2019_flow"}})
    return Cache(path)


def step_ms(threads: int, reps: int = 200) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model("ststnet", 3, 3).to(memory_format=loop.MEMORY_FORMAT)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-5, weight_decay=1e-3)
    x = torch.rand(BATCH, 3, 28, 28).contiguous(memory_format=loop.MEMORY_FORMAT)
    y = torch.randint(0, 3, (BATCH,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x, None), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - start) / reps * 1e3


def epoch_seconds(cache: Cache, epochs: int) -> float:
    config = loop.TrainConfig(
        epochs=epochs,
        batch_size=BATCH,
        lr=5e-5,
        weight_decay=1e-3,
        gamma=1.0,
        optimizer="adam",
        threads=1,
        augment=augment.OFF,
    )
    subject = cache.subjects[0]
    start = time.perf_counter()
    loop.train_fold(cache, subject, "ststnet", {}, loop.InputConfig("precomputed", 28), config, log=lambda _: None)
    return time.perf_counter() - start


def fold_process_seconds(cache: Cache, work: Path) -> float:
    """One fold stage's process (stages/train.py) for 1 epoch: its whole wall time."""
    params = work / "params.yaml"
    params.write_text(
        "input: {kind: precomputed, file: x, size: 28}\nmodel: {name: ststnet, options: {}}\n"
        "train: {seeds: [7], epochs: 1, batch_size: 32, lr: 5.0e-05, weight_decay: 0.001, gamma: 1.0, "
        "optimizer: adam, threads: 1, class_weights: none, validation_subjects: 0, precision: fp32, "
        "grad_checkpointing: false, augment: {frame_jitter: false, flip: 0.0, crop_padding: 0, rotation: 0.0, "
        "colour: 0.0}}\n"
    )
    args = [sys.executable, str(PROJECT / "stages/train.py"), "--subject", str(cache.subjects[0]), "--seed", "7"]
    args += ["--params", str(params), "--cache", str(cache.path), "--motion", str(cache.path)]
    args += ["--models", str(work / "models"), "--reports", str(work / "reports")]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, help="a clone of HTNet's repository: its published images")
    args = parser.parse_args()
    print(machine(("torch",)))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = real_cache(args.real, work / "cache.h5") if args.real else synthetic_cache(work / "cache.h5")
        kind = "published" if args.real else "random"
        print(f"\ncache: {len(cache)} clips, {len(set(cache.subjects))} subjects, {kind} 3x28x28")

        one, two = step_ms(1), step_ms(2)
        print(f"\n## step, batch {BATCH} (forward + backward + Adam)\n1 thread {one:.2f} ms, 2 threads {two:.2f} ms")
        short, long = epoch_seconds(cache, 2), epoch_seconds(cache, 12)
        per_epoch = (long - short) / 10
        steps = int(np.ceil(len(cache) / BATCH))
        print(f"epoch through the fold loop (1 thread, {steps} steps + test): {per_epoch:.3f} s")

        process, torch_import = fold_process_seconds(cache, work), import_seconds()
        fixed = process - per_epoch
        print(
            f"\n## a fold's fixed cost\nfold process for 1 epoch {process:.1f} s: fixed {fixed:.1f} s "
            f"(python + import torch {torch_import:.1f} s)"
        )

        fold = fixed + EPOCHS * per_epoch
        sequential = SUBJECTS * fold / 60
        print(
            f"\n## {SUBJECTS} folds x {EPOCHS} epochs, one seed\n"
            f"per fold {fold:.0f} s ({EPOCHS * per_epoch / fold:.0%} training): "
            f"one after another {sequential:.0f} min, 2 at a time ~{sequential / 2:.0f} min (goal 15 min: "
            f"{'met' if sequential / 2 <= 15 else 'not met'}); DVC's own start per stage is not included"
        )
    print(load())


if __name__ == "__main__":
    main()
