"""MMNet's continuous-attention (CA) maps as figure data: what the motion branch looks at.

The maps are the very tensors MMNet's forward multiplies each CA block's output by, taken by forward
hooks on the blocks (the forward and its numbers are untouched): A1..A4 at 1/2, 1/4, 1/8 and 1/16 of
the input side, each the block's own map times the pooled map of the block before. For a figure each map is upsampled
(bilinear) to the model input, a clip's mean map averages its four maps after scaling each to
[0, 1] (A4, a product of four sigmoids, would otherwise vanish beside A1), and a class's mean map
averages the mean maps of its clips. Every crop lies in the template's frame, so class means drawn
on the mean onset face show where, on the template face, each class draws attention.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from mer.face.align import crop_affine

if TYPE_CHECKING:
    from mer.models.mmnet import MMNet

BLOCKS = ("CA1", "CA2", "CA3", "CA4")
BATCH = 64


@torch.no_grad()
def attention_maps(model: MMNet, motion: torch.Tensor, onset: torch.Tensor) -> tuple[torch.Tensor, list[np.ndarray]]:
    """The logits (n, C) of the model's own forward (eval mode, fp32) and each CA block's map, (n, s_i, s_i) float32.

    A forward hook on each CA block keeps the map it returns beside its output (`CABlock.forward` returns
    `(out * A, A)`), so the maps come from the very pass that gives the logits, and nothing in it changes.
    """
    model.eval()
    parts: list[list[np.ndarray]] = [[] for _ in BLOCKS]

    def keep(part: list[np.ndarray]) -> Callable[..., None]:
        return lambda _module, _inputs, output: part.append(output[1][:, 0].float().cpu().numpy())

    blocks = (model.layer1, model.layer2, model.layer3, model.layer4)
    hooks = [block.register_forward_hook(keep(part)) for block, part in zip(blocks, parts, strict=True)]
    try:
        logits = [model(m.float(), o.float()) for m, o in zip(motion.split(BATCH), onset.split(BATCH), strict=True)]
    finally:
        for hook in hooks:
            hook.remove()
    return torch.cat(logits).cpu(), [np.concatenate(part) for part in parts]


def upsample(maps: np.ndarray, size: int) -> np.ndarray:
    """(n, s, s) maps -> (n, size, size), bilinear (half-pixel centres, as the crops are resized)."""
    tensor = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[:, None]
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def mean_map(maps: list[np.ndarray], size: int) -> np.ndarray:
    """Each clip's mean over the blocks of its maps, upsampled to `size` and each scaled to [0, 1] first."""
    scaled = []
    for block in maps:
        up = upsample(block, size)
        low = up.min(axis=(1, 2), keepdims=True)
        span = up.max(axis=(1, 2), keepdims=True) - low
        scaled.append(np.divide(up - low, span, out=np.zeros_like(up), where=span > 0))
    return np.mean(scaled, axis=0)


def class_means(maps: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, H, W): the mean of `maps` (n, H, W) over the clips of each class; NaN for a class with none."""
    out = np.full((num_classes, *maps.shape[1:]), np.nan, dtype=np.float32)
    for c in range(num_classes):
        if (labels == c).any():
            out[c] = maps[labels == c].mean(axis=0)
    return out


def peaks(maps: np.ndarray) -> np.ndarray:
    """(n, 2) row, column of each map's maximum."""
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    return np.column_stack(np.unravel_index(flat, maps.shape[1:]))


def to_input_pixels(points: np.ndarray, landmarks: np.ndarray, crop: dict[str, Any], size: int) -> np.ndarray:
    """Template-space points (m, 2) -> (x, y) pixels of the model input made from the crop of a clip
    whose normalised landmarks are `landmarks` (the crop stage's rule, `crop` = its params block)."""
    affine = crop_affine(landmarks, crop["size"], crop["width"], crop["above"], crop["below"])
    uv = np.linalg.solve(affine[:, :2], (np.asarray(points, np.float64) - affine[:, 2]).T).T
    return (uv + 0.5) * size / crop["size"] - 0.5


def moving_region(anchors: np.ndarray, radius: float, size: int) -> np.ndarray:
    """(size, size) bool: the pixels within `radius` of any anchor (x, y)."""
    ys, xs = np.mgrid[0:size, 0:size]
    distance = np.min([np.hypot(xs - x, ys - y) for x, y in anchors], axis=0)
    return distance <= radius


def overlay(face: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """An RGB float image: `face` (H, W, 3) uint8 under `heat` (H, W) in [0, 1] as a jet colour map."""
    from matplotlib import colormaps

    colour = colormaps["jet"](np.clip(heat, 0, 1))[..., :3]
    return (1 - alpha) * face / 255.0 + alpha * colour


def synthetic_region(landmarks: np.ndarray, label: str, crop: dict[str, Any], size: int) -> np.ndarray:
    """Where the synthetic set moves a clip of `label` (mer.datasets.synthetic): within two bump widths
    (2 x 0.25 eye distances) of the landmarks it displaces, in model-input pixels."""
    from mer.datasets.synthetic import MOVEMENTS

    anchors = landmarks[[index for index, _ in MOVEMENTS[label][1]]]
    eye_distance = size / crop["width"]  # the crop is `width` eye distances wide
    return moving_region(to_input_pixels(anchors, landmarks, crop, size), 0.5 * eye_distance, size)


def figure(
    path: str,
    rows: list[tuple[str, np.ndarray, list[np.ndarray], np.ndarray]],
    face: np.ndarray,
    means: np.ndarray,
    classes: list[str],
    sizes: list[int],
    points: np.ndarray | None = None,
) -> None:
    """The report's attention.png: per shown clip its onset with each CA map and its mean map overlaid
    (`rows`: title, onset (H, W, 3) uint8, four upsampled maps, mean map), then each class's mean map on
    the template face `face` (with the template's landmarks `points` in input pixels); `sizes`: the maps' sides."""
    import matplotlib.pyplot as plt

    from mer.plots import save

    cols = len(BLOCKS) + 2
    class_rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(
        len(rows) + class_rows, cols, figsize=(2 * cols, 2 * (len(rows) + class_rows)), squeeze=False
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for r, (title, onset, maps, mean) in enumerate(rows):
        axes[r, 0].imshow(onset)
        axes[r, 0].set_ylabel(title, fontsize=7)
        for c, heat in enumerate([*maps, mean], start=1):
            scaled = (heat - heat.min()) / max(float(heat.max() - heat.min()), 1e-12)
            axes[r, c].imshow(overlay(onset, scaled))
            if r == 0:
                axes[r, c].set_title(
                    f"{BLOCKS[c - 1]} ({sizes[c - 1]} px map)" if c <= len(BLOCKS) else "mean of the 4", fontsize=8
                )
    if rows:
        axes[0, 0].set_title("onset", fontsize=8)
    for c, name in enumerate(classes):
        ax = axes[len(rows) + c // cols, c % cols]
        ax.set_frame_on(True)
        if np.isnan(means[c]).all():
            ax.set_title(f"{name}: no clips", fontsize=8)
            continue
        ax.imshow(overlay(face, means[c] / max(float(np.nanmax(means[c])), 1e-12)))
        if points is not None:
            ax.scatter(points[:, 0], points[:, 1], s=2, c="white", linewidths=0)
        ax.set_title(f"class mean: {name}", fontsize=8)
    save(fig, path)
