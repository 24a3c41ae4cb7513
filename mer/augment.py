"""Training augmentation on whole batches, with per-sample random parameters.

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2.functional import rgb_to_grayscale

from mer import inputs


@dataclass(frozen=True)
class Augment:
    frame_jitter: bool = True   # draw onset/apex from their windows
    flip: float = 0.5           # probability of a horizontal flip
    crop_padding: int = 15      # px at the input size (paper: 15 at 224)
    rotation: float = 10.0      # max degrees either way
    colour: float = 0.2         # brightness/contrast/saturation factors in [1 - c, 1 + c]



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
