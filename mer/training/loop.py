"""One leave-one-subject-out fold: train on every other subject, predict the left-out one.

The fold's data are small, so all of it sits in memory as uint8 tensors (mer.training.inputs) and
batches are built and augmented as whole tensors (mer.training.augment).

Evaluation uses the labelled frames, no augmentation. The model kept for the test subject
is never chosen by looking at that subject: it is the final epoch's, or, with
`validation_subjects: n`, the epoch that scores best on n training subjects held out of
training (whole subjects, as the test subject is). Per-epoch test
predictions are recorded too, so a report can show what the official "best epoch per
subject" protocol would have claimed, labelled as optimistic.

Subject `all` (FINAL, the optional stage `final@all`) trains one model on every subject with the same
schedule, for users who want a single model to ship; it has no test subject, so it is not evaluated.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from mer.cache_store import Cache
from mer.training import inputs
from mer.training.augment import Augment, training_inputs
from mer.training.device import Device, check_precision, choose, resolve_threads
from mer.training.fold_model import build

OPTIMISERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}  # adam: L2 weight decay, as MEB's baselines
EVAL_BATCH = 64
MEMORY_FORMAT = torch.channels_last  # on every device: 1.2x a CPU step too (benchmarks/README.md)
FINAL = "all"  # the subject name of the final model: trained on every subject, not evaluated


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 70
    batch_size: int = 32
    lr: float = 8e-4
    weight_decay: float = 0.6
    gamma: float = 0.987  # ExponentialLR, per epoch
    optimizer: str = "adamw"  # adamw (decoupled weight decay, the paper) | adam (L2 weight decay)
    seed: int = 0
    class_weights: str | list[float] = "none"  # none | inverse_frequency | one weight per class
    validation_subjects: int = 0  # 0: keep the final epoch; n: choose the epoch on n held-out subjects
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (see mer.training.device.resolve_precision)
    grad_checkpointing: bool = False  # recompute activations in backward: less memory, slower step
    threads: int | str = "auto"  # intra-op CPU threads: auto (every core of the machine) or a number
    augment: Augment = field(default_factory=Augment)

    @classmethod
    def from_params(cls, params: dict) -> TrainConfig:
        """Build from the `train` params block; unknown keys raise TypeError."""
        params = dict(params)
        augment = Augment(**params.pop("augment", {}))
        config = cls(**params, augment=augment)
        check_precision(config.precision)
        resolve_threads(config.threads)  # raises on a bad value
        if config.optimizer not in OPTIMISERS:
            raise ValueError(f"train.optimizer must be one of {tuple(OPTIMISERS)}, got {config.optimizer!r}")
        return config


def fold_config(train: dict, seed: int) -> TrainConfig:
    """The TrainConfig of one seed's folds: the `train` block with `seeds` replaced by that one seed.

    `seeds` itself is not read, so a fold's stage does not depend on which other seeds are listed.
    """
    return TrainConfig.from_params({**{k: v for k, v in train.items() if k != "seeds"}, "seed": seed})


@dataclass(frozen=True)
class InputConfig:
    kind: str = "difference"
    size: int = 224


@dataclass
class FoldResult:
    subject: str
    state_dict: dict[str, Tensor]
    predictions: pd.DataFrame
    curves: dict[str, Any]


def class_weights(train_labels: np.ndarray, num_classes: int, spec: str | Sequence[float]) -> Tensor | None:
    """Cross-entropy class weights from the TRAINING fold's labels only.

    `inverse_frequency`: n / (C * count_c) (mean weight 1 over the training clips); a class
    absent from the training fold gets 0, it cannot occur there anyway.
    """
    if isinstance(spec, str):
        if spec == "none":
            return None
        if spec != "inverse_frequency":
            raise ValueError(f"class_weights must be 'none', 'inverse_frequency' or a list, got {spec!r}")
        counts = np.bincount(train_labels, minlength=num_classes).astype(np.float64)
        weights = np.divide(len(train_labels), num_classes * counts, out=np.zeros_like(counts), where=counts > 0)
        return torch.tensor(weights, dtype=torch.float32)
    if len(spec) != num_classes:
        raise ValueError(f"class_weights has {len(spec)} values for {num_classes} classes")
    return torch.tensor([float(w) for w in spec], dtype=torch.float32)


@dataclass
class _Evaluation:
    """Clips scored after every epoch (test subject, or validation subjects): labelled frames, no augmentation."""

    motion: Tensor
    onset: Tensor
    labels: Tensor

    def __init__(self, frames: inputs.FoldFrames, labels: np.ndarray, kind: str, device: Device) -> None:
        batch = inputs.select(frames, torch.arange(len(frames)))
        self.motion, self.onset = _to(inputs.motion(batch, kind), device), _to(batch.onset, device)  # copied once
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def score(
        self, predict: Callable[[Tensor, Tensor], Tensor], prefix: str, probs: Tensor | None = None
    ) -> dict[str, Any]:
        probs = predict(self.motion, self.onset) if probs is None else probs
        pred = probs.argmax(1)
        return {
            f"{prefix}_loss": F.nll_loss(probs.clamp_min(1e-12).log(), self.labels).item(),
            f"{prefix}_acc": (pred == self.labels).float().mean().item(),
            f"{prefix}_pred": pred.tolist(),
        }


def train_fold(
    cache: Cache,
    subject: str,
    model_name: str,
    options: dict[str, Any],
    input_config: InputConfig,
    config: TrainConfig,
    flow: str | Path | None = None,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> FoldResult:
    """Train on every subject but `subject` for `config.epochs` epochs; predict `subject`.

    `flow`: the flow stage's file (mer.flow), needed for input kind `flow` only.
    `on_epoch`: called with each epoch's record as it ends (live logging, mer.training.live).
    """
    device = choose(config.precision, config.threads)  # for the process: a fold is one
    _seed(config.seed, device.device)
    train_idx, test_idx = (np.arange(len(cache)), np.arange(0)) if subject == FINAL else cache.fold(subject)
    train_idx, val_idx = validation_split(cache, train_idx, config.validation_subjects, config.seed)
    kind, num_classes = input_config.kind, len(cache.classes)
    load = functools.partial(inputs.load_fold, cache, kind=kind, size=input_config.size, flow=flow)
    train_frames = load(train_idx)
    train_labels = torch.as_tensor(cache.labels[train_idx], dtype=torch.long)
    test = _Evaluation(load(test_idx), cache.labels[test_idx], kind, device) if len(test_idx) else None
    val = _Evaluation(load(val_idx), cache.labels[val_idx], kind, device) if len(val_idx) else None

    model = build(model_name, options, num_classes, kind, input_config.size, cache).to(device.device)
    model = model.to(memory_format=MEMORY_FORMAT)
    model.set_grad_checkpointing(config.grad_checkpointing)  # type: ignore[operator]  # nn.Module.__getattr__ is typed Tensor | Module
    optimiser = OPTIMISERS[config.optimizer](model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.gamma)
    weights = class_weights(cache.labels[train_idx], num_classes, config.class_weights)
    step = _Step(
        model,
        optimiser,
        nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device.device)),
        torch.amp.GradScaler(device.device.type, enabled=device.precision == "fp16"),
        device,
    )
    generator = torch.Generator().manual_seed(config.seed)
    run = functools.partial(predict, model, device=device)

    k, n = (1, 1) if subject == FINAL else fold_position(cache, subject)
    log(
        f"fold {k}/{n} {subject}: {config.epochs} epochs on {len(train_frames)} training clips, "
        f"{len(val_idx)} validation, {len(test_idx)} test ({device})"
    )
    began = time.perf_counter()
    epochs: list[dict[str, Any]] = []
    selection = _Selection(validated=val is not None)
    bar = tqdm(range(1, config.epochs + 1), desc=f"fold {k}/{n} {subject}", unit="epoch", mininterval=1.0)
    for epoch in bar:
        lr = schedule.get_last_lr()[0]
        loss, accuracy = step.epoch(train_frames, train_labels, kind, config, generator)
        schedule.step()
        record = {"epoch": epoch, "lr": lr, "train_loss": loss, "train_acc": accuracy}
        probs = _evaluate(record, run, val, test, num_classes)
        epochs.append(record)
        if on_epoch is not None:
            on_epoch(record)
        selection.consider(record, probs, model)
        bar.set_postfix_str(
            ", ".join(f"{key} {value:.3g}" for key, value in record.items() if key.endswith(("_loss", "_acc"))),
            refresh=False,
        )
    bar.close()
    kept = selection.kept
    assert kept is not None, "train.epochs must be at least 1"
    log(
        f"fold {k}/{n} {subject}: kept epoch {kept['epoch']} ({'validation' if val is not None else 'final'}), "
        + (f"test accuracy {kept['test_acc']:.3f} on {len(test_idx)} clips, " if test is not None else "")
        + f"train loss {kept['train_loss']:.3g}, "
        f"{time.perf_counter() - began:.0f} s"
    )

    curves = _curves(
        cache,
        subject,
        train_idx,
        val_idx,
        test_idx,
        model_name,
        options,
        input_config,
        config,
        epochs,
        kept["epoch"],
        device,
    )
    curves["class_weights"] = None if weights is None else weights.tolist()
    curves["diverged"] = diverged(epochs)
    if curves["diverged"]:
        first, final = epochs[0]["train_loss"], epochs[-1]["train_loss"]
        log(
            f"WARNING fold {k}/{n} {subject}: training loss rose from {first:.3g} (epoch 1) to {final:.3g} "
            f'(epoch {len(epochs)}): this fold diverged (README, "A diverging fold")'
        )
    if subject == FINAL:
        curves["note"] = "final model on every subject (final@all): no test subject, NOT evaluated"
    predictions = _predictions_table(cache, test_idx, kept["probs"])
    return FoldResult(subject=subject, state_dict=selection.state(model), predictions=predictions, curves=curves)


@dataclass
class _Step:
    """A fold's model with its optimiser, loss and precision; `epoch` is one pass over the training clips."""

    model: nn.Module
    optimiser: torch.optim.Optimizer
    criterion: nn.Module
    scaler: torch.amp.GradScaler
    device: Device

    def epoch(
        self, frames: inputs.FoldFrames, labels: Tensor, kind: str, config: TrainConfig, generator: torch.Generator
    ) -> tuple[float, float]:
        """Train on every clip once, in shuffled batches; the mean training loss and accuracy over the clips."""
        self.model.train()
        loss_sum, correct = 0.0, 0.0
        for rows in _batches(len(frames), config.batch_size, generator):
            motion, onset = training_inputs(frames, rows, kind, config.augment, generator)
            target = labels[rows].to(self.device.device)
            with _autocast(self.device):
                logits = self.model(_to(motion, self.device), _to(onset, self.device))
                loss = self.criterion(logits.float(), target)
            self.optimiser.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimiser)
            self.scaler.update()
            loss_sum += loss.item() * len(rows)
            correct += (logits.argmax(1) == target).sum().item()
        return loss_sum / len(frames), correct / len(frames)


def _evaluate(
    record: dict[str, Any],
    run: Callable[[Tensor, Tensor], Tensor],
    val: _Evaluation | None,
    test: _Evaluation | None,
    num_classes: int,
) -> Tensor:
    """Score the epoch's model on the validation and test clips into `record`; the test clips' probabilities."""
    if val is not None:
        record.update(val.score(run, "val"))
    probs = torch.empty(0, num_classes)
    if test is not None:
        probs = run(test.motion, test.onset)
        record.update(test.score(run, "test", probs))
    return probs


class _Selection:
    """The epoch a fold keeps: the final one, or with validation subjects the best on them (never one chosen by
    the test subject). Only a validated selection copies a state per better epoch; the final one is taken last."""

    def __init__(self, validated: bool) -> None:
        self.validated = validated
        self.kept: dict[str, Any] | None = None

    def consider(self, record: dict[str, Any], probs: Tensor, model: nn.Module) -> None:
        if not self.validated:
            self.kept = {**record, "probs": probs}
        elif self.kept is None or record["val_acc"] > self.kept["val_acc"]:
            self.kept = {**record, "probs": probs, "state": _cpu_state(model)}

    def state(self, model: nn.Module) -> dict[str, Tensor]:
        assert self.kept is not None, "consider runs once per epoch first"
        return self.kept["state"] if self.validated else _cpu_state(model)


def diverged(epochs: list[dict[str, Any]]) -> bool:
    """Whether the final epoch's training loss is above the first epoch's: the fold did not learn its own clips."""
    return epochs[-1]["train_loss"] > epochs[0]["train_loss"]


def fold_position(cache: Cache, subject: str) -> tuple[int, int]:
    """`subject`'s fold number (1-based, in the cache's subject order) and the number of folds."""
    subjects = list(dict.fromkeys(cache.subjects))
    return subjects.index(subject) + 1, len(subjects)


def validation_split(cache: Cache, train_idx: np.ndarray, subjects: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `subjects` whole training subjects (drawn with `seed`) to choose the epoch by."""
    names = sorted(set(cache.subjects[train_idx]))
    if subjects == 0:
        return train_idx, train_idx[:0]
    if not 0 < subjects < len(names):
        raise ValueError(
            f"train.validation_subjects must be in 0..{len(names) - 1} (this fold trains on "
            f"{len(names)} subjects), got {subjects}"
        )
    held = set(np.random.default_rng(seed).choice(names, subjects, replace=False))
    in_val = np.isin(cache.subjects[train_idx], list(held))
    return train_idx[~in_val], train_idx[in_val]


def _seed(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        # deterministic mode's NaN fill of every new tensor guards against reading memory no op writes, which no
        # op here does; it cost ~10% of a small model's step (STSTNet: 54 fills a step, benchmarks/README.md)
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A shuffled split of range(n); a last batch of one clip joins the previous one (BatchNorm)."""
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _autocast(device: Device) -> contextlib.AbstractContextManager:
    if device.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.device.type, dtype=torch.bfloat16 if device.precision == "bf16" else torch.float16)


def _to(x: Tensor, device: Device) -> Tensor:
    """`x` on `device` in the model's memory format. With `pin_memory` (a GPU) a host tensor goes through pinned
    memory, so the copy is asynchronous and the CPU draws the next batch while the GPU computes."""
    if device.pin_memory and x.device.type == "cpu":
        x = x.pin_memory()
    return x.to(device.device, non_blocking=True).contiguous(memory_format=MEMORY_FORMAT)


@torch.no_grad()
def predict(model: nn.Module, motion: Tensor, onset: Tensor, device: Device) -> Tensor:
    """Class probabilities (n, C) on CPU, in eval mode, EVAL_BATCH clips at a time."""
    model.eval()
    probs = []
    for m, o in zip(motion.split(EVAL_BATCH), onset.split(EVAL_BATCH), strict=True):
        with _autocast(device):
            logits = model(_to(m, device), _to(o, device))
        probs.append(logits.float().softmax(1).cpu())
    return torch.cat(probs)


def _predictions_table(cache: Cache, test_idx: np.ndarray, probs: Tensor) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "sample_id": [cache.sample_ids[i] for i in test_idx],
            "subject": cache.subjects[test_idx],
            "label": cache.labels[test_idx],
            "pred": probs.argmax(1).numpy(),
        }
    )
    for c, name in enumerate(cache.classes):
        table[f"prob_{name}"] = probs[:, c].numpy()
    return table


def _curves(
    cache: Cache,
    subject: str,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    test_idx: np.ndarray,
    model_name: str,
    options: dict[str, Any],
    input_config: InputConfig,
    config: TrainConfig,
    epochs: list[dict],
    selected_epoch: int,
    device: Device,
) -> dict[str, Any]:
    best = max(epochs, key=lambda e: e["test_acc"]) if len(test_idx) else None
    ids = lambda idx: [cache.sample_ids[i] for i in idx]  # noqa: E731
    return {
        "subject": subject,
        "classes": cache.classes,
        "model": {"name": model_name, "options": options},
        "input": asdict(input_config),
        "train": asdict(config),
        "device": device.device.type,
        "precision": device.precision,
        "threads": device.threads,
        "train_samples": ids(train_idx),
        "validation_samples": ids(val_idx),
        "test_samples": ids(test_idx),
        "test_labels": cache.labels[test_idx],
        "selection": "validation" if len(val_idx) else "final",
        "selected_epoch": selected_epoch,
        "optimistic_best_epoch": None
        if best is None
        else {
            "note": "OPTIMISTIC: epoch chosen by this test subject's own accuracy (official MMNet code's "
            "protocol); for comparison only, never the reported result",
            "epoch": best["epoch"],
            "test_acc": best["test_acc"],
        },
        "epochs": epochs,
    }


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
