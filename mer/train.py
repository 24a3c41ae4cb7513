"""One leave-one-subject-out fold: train on every other subject, predict the left-out one.

The fold's data are small, so all of it sits in memory as uint8 tensors (mer.inputs) and
batches are built and augmented as whole tensors, with per-sample random parameters:

- frame jitter: onset and apex drawn from their cached windows (not for `flow`, which is
  computed once at the labelled frames);
- colour jitter (brightness, contrast, saturation) on the onset/apex RGB, the SAME factors
  for both frames of a clip so the difference stays a motion signal;
- flip, random crop with zero padding (a shift of up to `crop_padding` px) and a small
  rotation, as one affine warp of motion and onset together; flow vectors are rotated and
  flipped with the image.
torchvision.transforms.v2 transforms applied to a batched tensor draw ONE parameter set for
the whole batch (every clip flipped or not together), hence the batched affine warp here;
v2's functional `rgb_to_grayscale` serves the colour jitter.

Evaluation uses the labelled frames, no augmentation. The model kept for the test subject
is the final epoch's (honest: never chosen by looking at that subject). Per-epoch test
predictions are recorded too, so a report can show what the official "best epoch per
subject" protocol would have claimed, labelled as optimistic.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms.v2.functional import rgb_to_grayscale

from mer import inputs
from mer.cache import Cache
from mer.io import atomic_path, write_json
from mer.models import build_model, model_options

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Augment:
    frame_jitter: bool = True   # draw onset/apex from their windows
    flip: float = 0.5           # probability of a horizontal flip
    crop_padding: int = 15      # px at the input size (paper: 15 at 224)
    rotation: float = 10.0      # max degrees either way
    colour: float = 0.2         # brightness/contrast/saturation factors in [1 - c, 1 + c]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 70
    batch_size: int = 32
    lr: float = 8e-4
    weight_decay: float = 0.6
    gamma: float = 0.987                       # ExponentialLR, per epoch
    seed: int = 0
    class_weights: str | list[float] = "none"  # none | inverse_frequency | one weight per class
    precision: str = "fp32"                    # fp32 | bf16 (autocast; CUDA always uses AMP)
    augment: Augment = field(default_factory=Augment)

    @classmethod
    def from_params(cls, params: dict) -> "TrainConfig":
        """Build from the `train` params block; unknown keys raise TypeError."""
        params = dict(params)
        augment = Augment(**params.pop("augment", {}))
        config = cls(**params, augment=augment)
        if config.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {PRECISIONS}, got {config.precision!r}")
        return config


@dataclass(frozen=True)
class InputConfig:
    kind: str = "difference"
    size: int = 224
    flow_store: str | None = None  # folder for computed TV-L1 flow; None: memory only


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


def colour_jitter(onset: Tensor, apex: Tensor, strength: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Brightness, contrast and saturation jitter with per-clip factors shared by onset and apex."""
    if strength <= 0:
        return onset, apex
    pair = torch.stack([onset, apex], dim=1)  # (B, 2, 3, H, W)
    brightness, contrast, saturation = 1 + strength * (2 * torch.rand(3, pair.shape[0], 1, 1, 1, 1,
                                                                        generator=generator) - 1)
    pair = pair * brightness
    mean = rgb_to_grayscale(pair).mean(dim=(1, 2, 3, 4), keepdim=True)
    pair = contrast * pair + (1 - contrast) * mean
    pair = (saturation * pair + (1 - saturation) * rgb_to_grayscale(pair)).clamp(0, 1)
    return pair[:, 0], pair[:, 1]


def random_affine(images: Tensor, augment: Augment, generator: torch.Generator,
                  vectors: slice | None = None) -> Tensor:
    """Flip, shift (crop with zero padding) and rotate each image; `vectors` channels are (u, v) fields."""
    n, size = images.shape[0], images.shape[-1]
    angle = math.radians(augment.rotation) * (2 * torch.rand(n, generator=generator) - 1)
    flip = torch.where(torch.rand(n, generator=generator) < augment.flip, -1.0, 1.0)
    pad = augment.crop_padding
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=generator).float() * 2 / size
    cos, sin = angle.cos(), angle.sin()
    # output pixel p samples input A p + t, with A = rotation(angle) @ diag(flip, 1)
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if vectors is None:
        return out
    # a displacement d in the input becomes A^-1 d in the output
    u, v = out[:, vectors][:, 0], out[:, vectors][:, 1]
    c, s, f = cos.view(-1, 1, 1), sin.view(-1, 1, 1), flip.view(-1, 1, 1)
    fixed = torch.stack([f * (c * u + s * v), c * v - s * u], dim=1)
    return torch.cat([out[:, :vectors.start], fixed, out[:, vectors.stop:]], dim=1)


def training_inputs(frames: inputs.FoldFrames, rows: Tensor, kind: str, augment: Augment,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Augmented (motion, onset) for the training clips `rows`."""
    onset_at = apex_at = None
    if augment.frame_jitter:
        onset_at = torch.randint(0, frames.window, (len(rows),), generator=generator)
        apex_at = torch.randint(0, frames.window, (len(rows),), generator=generator)
    batch = inputs.select(frames, rows, onset_at, apex_at)
    batch = batch.with_rgb(*colour_jitter(batch.onset, batch.apex, augment.colour, generator))
    motion = inputs.motion(batch, kind)
    channels = motion.shape[1]
    both = random_affine(torch.cat([motion, batch.onset], dim=1), augment, generator,
                         vectors=slice(0, 2) if kind == "flow" else None)
    return both[:, :channels], both[:, channels:]


def evaluation_inputs(frames: inputs.FoldFrames, kind: str) -> tuple[Tensor, Tensor]:
    """(motion, onset) of every clip at its labelled frames, no augmentation."""
    batch = inputs.select(frames, torch.arange(len(frames)))
    return inputs.motion(batch, kind), batch.onset


def select_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_fold(cache: Cache, subject: str, model_name: str, options: dict[str, Any], input_config: InputConfig,
               config: TrainConfig, log: Callable[[str], None] = print) -> FoldResult:
    """Train on every subject but `subject` for `config.epochs` epochs; predict `subject`."""
    device = select_device()
    _seed(config.seed, device)
    train_idx, test_idx = cache.fold(subject)
    kind, num_classes = input_config.kind, len(cache.classes)
    train_frames = inputs.load_frames(cache, train_idx, kind, input_config.size, input_config.flow_store)
    test_frames = inputs.load_frames(cache, test_idx, kind, input_config.size, input_config.flow_store)
    train_labels = torch.as_tensor(cache.labels[train_idx], dtype=torch.long)
    test_labels = torch.as_tensor(cache.labels[test_idx], dtype=torch.long)

    model = _build(model_name, options, num_classes, kind, input_config.size).to(device)
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=config.gamma)
    weights = class_weights(cache.labels[train_idx], num_classes, config.class_weights)
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and config.precision == "fp32")
    generator = torch.Generator().manual_seed(config.seed)
    test_motion, test_onset = evaluation_inputs(test_frames, kind)

    epochs = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        lr = schedule.get_last_lr()[0]
        train_loss, train_acc = 0.0, 0.0
        for rows in _batches(len(train_frames), config.batch_size, generator):
            motion, onset = training_inputs(train_frames, rows, kind, config.augment, generator)
            labels = train_labels[rows].to(device)
            with _autocast(device, config.precision):
                logits = model(_to(motion, device, memory_format), _to(onset, device, memory_format))
                loss = criterion(logits.float(), labels)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            train_loss += loss.item() * len(rows)
            train_acc += (logits.argmax(1) == labels).sum().item()
        schedule.step()
        probs = _predict(model, test_motion, test_onset, device, memory_format, config.precision)
        test_loss = F.nll_loss(probs.clamp_min(1e-12).log(), test_labels).item()
        pred = probs.argmax(1)
        epochs.append({"epoch": epoch, "lr": lr, "train_loss": train_loss / len(train_frames),
                       "train_acc": train_acc / len(train_frames), "test_loss": test_loss,
                       "test_acc": (pred == test_labels).float().mean().item(), "test_pred": pred.tolist(),
                       "seconds": time.perf_counter() - start})
        log(f"{subject} epoch {epoch}/{config.epochs}: " + ", ".join(
            f"{k} {epochs[-1][k]:.4g}" for k in ("train_loss", "train_acc", "test_loss", "test_acc", "seconds")))

    predictions = _predictions_table(cache, test_idx, probs)
    curves = _curves(cache, subject, train_idx, test_idx, model_name, options, input_config, config, epochs, device)
    curves["class_weights"] = None if weights is None else weights.tolist()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return FoldResult(subject=subject, state_dict=state, predictions=predictions, curves=curves)


def write_fold(result: FoldResult, checkpoint: str | Path, predictions: str | Path, curves: str | Path) -> None:
    """Write the fold's outputs, each atomically (an interrupted run leaves no file DVC would trust)."""
    with atomic_path(checkpoint, ".pt") as tmp:
        torch.save(result.state_dict, tmp)
    with atomic_path(predictions, ".csv") as tmp:
        result.predictions.to_csv(tmp, index=False, float_format="%.6f")
    write_json(curves, result.curves)


def _seed(seed: int, device: torch.device) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)


def _build(name: str, options: dict[str, Any], num_classes: int, kind: str, size: int) -> nn.Module:
    """The model; MMNet's `input_size` follows `input.size` unless given explicitly."""
    options = dict(options)
    if "input_size" in model_options(name):
        options.setdefault("input_size", size)
    return build_model(name, num_classes, inputs.in_channels(kind), **options)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A shuffled split of range(n); a last batch of one clip joins the previous one (BatchNorm)."""
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to(x: Tensor, device: torch.device, memory_format: torch.memory_format) -> Tensor:
    return x.to(device, non_blocking=True).contiguous(memory_format=memory_format)


@torch.no_grad()
def _predict(model: nn.Module, motion: Tensor, onset: Tensor, device: torch.device,
             memory_format: torch.memory_format, precision: str) -> Tensor:
    """Class probabilities (n, C) on CPU, in eval mode."""
    model.eval()
    with _autocast(device, precision):
        logits = model(_to(motion, device, memory_format), _to(onset, device, memory_format))
    return logits.float().softmax(1).cpu()


def _predictions_table(cache: Cache, test_idx: np.ndarray, probs: Tensor) -> pd.DataFrame:
    table = pd.DataFrame({"sample_id": [cache.sample_ids[i] for i in test_idx],
                          "subject": cache.subjects[test_idx], "label": cache.labels[test_idx],
                          "pred": probs.argmax(1).numpy()})
    for c, name in enumerate(cache.classes):
        table[f"prob_{name}"] = probs[:, c].numpy()
    return table


def _curves(cache: Cache, subject: str, train_idx: np.ndarray, test_idx: np.ndarray, model_name: str,
            options: dict[str, Any], input_config: InputConfig, config: TrainConfig, epochs: list[dict],
            device: torch.device) -> dict[str, Any]:
    best = max(epochs, key=lambda e: e["test_acc"])
    return {
        "subject": subject, "classes": cache.classes, "model": {"name": model_name, "options": options},
        "input": asdict(input_config), "train": asdict(config), "device": device.type,
        "train_samples": [cache.sample_ids[i] for i in train_idx],
        "test_samples": [cache.sample_ids[i] for i in test_idx], "test_labels": cache.labels[test_idx],
        "selected_epoch": epochs[-1]["epoch"],
        "optimistic_best_epoch": {
            "note": "OPTIMISTIC: epoch chosen by this test subject's own accuracy (official MMNet code's "
                    "protocol); for comparison only, never the reported result",
            "epoch": best["epoch"], "test_acc": best["test_acc"]},
        "epochs": epochs,
    }
