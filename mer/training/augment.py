"""Training augmentation on whole batches, with per-sample random parameters.

- frame jitter: onset and apex drawn from their cached windows (not for `flow`, which is
  computed once at the labelled frames);
- colour jitter (brightness, contrast, saturation) on the onset/apex RGB, the SAME factors
  for both frames of a clip so the difference stays a motion signal;
- flip, random crop with zero padding (a shift of up to `crop_padding` px) and a small
  rotation, as one affine warp of all the frames a clip's inputs are made of; flow vectors are
  rotated and flipped with the image.
torchvision.transforms.v2 transforms applied to a batched tensor draw ONE parameter set for
the whole batch (every clip flipped or not together), hence the per-clip parameters here.

Speed (benchmarks/data_path.py; issue 7 asks for >= 20x the official loader):
- the colour jitter is one 3x3 matrix and offset per clip, applied to the uint8 pixels (the /255
  folded in), instead of ~10 passes over float images;
- the warp takes the onset and apex frames as they are, (B, 2, 3, H, W) viewed as 6 channels,
  and the motion is taken after it: the bilinear warp is linear, zero padding included, so it
  commutes with the difference, and no motion + onset concatenation is needed;
- the sampling grid is a column term plus a row term (`Affine`): F.affine_grid took ~16x longer;
- all parameters are drawn for the batch first, then the clips go through gather, colour, warp
  and motion `STEP` at a time: on a whole batch every op streams ~20-40 MB through memory, and
  grid_sample took 4x longer per clip at batch 32 than at batch 2;
- the steps run in one worker thread per torch thread, each single-threaded (`_per_thread`).
Results do not depend on the step size or the threads.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mer.training import inputs

# torchvision's rgb_to_grayscale weights; they sum to 0.9999, which the colour offset keeps
GREY = (0.2989, 0.587, 0.114)
PAIR_GREY = torch.tensor(GREY * 2)  # for the 6 channels of an onset/apex pair


@dataclass(frozen=True)
class Augment:
    frame_jitter: bool = True  # draw onset/apex from their windows
    flip: float = 0.5  # probability of a horizontal flip
    crop_padding: int = 15  # px at the input size (paper: 15 at 224)
    rotation: float = 10.0  # max degrees either way
    colour: float = 0.2  # brightness/contrast/saturation factors in [1 - c, 1 + c]


OFF = Augment(frame_jitter=False, flip=0.0, crop_padding=0, rotation=0.0, colour=0.0)


@dataclass(frozen=True)
class ColourJitter:
    """Per clip, brightness, contrast and saturation as one affine map of uint8 RGB.

    torchvision's brightness (b·x), contrast (c·x + (1 - c)·m, m the mean grey, here of both
    frames after brightness) and saturation (s·x + (1 - s)·grey(x)) are affine in RGB until the
    final clamp, so together they are clamp(M·x + o, 0, 1) with A = s·I + (1 - s)·1·w^T
    (w: GREY), M = c·b·A / 255 and o = (1 - c)·m·A·1. m depends on the pixels, so `grey_offset`
    is o per unit of the pair's summed grey level, and `apply` completes it.
    """

    matrix: Tensor  # (B, 3, 3)
    grey_offset: Tensor  # (B, 3)

    @classmethod
    def draw(cls, n: int, strength: float, generator: torch.Generator) -> ColourJitter:
        """Factors in [1 - strength, 1 + strength] for `n` clips, shared by both frames of a clip."""
        brightness, contrast, saturation = 1 + strength * (2 * torch.rand(3, n, 1, 1, generator=generator) - 1)
        grey = torch.tensor(GREY)
        saturate = saturation * torch.eye(3) + (1 - saturation) * grey
        return cls(
            matrix=contrast * brightness / 255 * saturate,
            grey_offset=(1 - contrast[:, 0]) * brightness[:, 0] / 255 * saturate.sum(dim=2),
        )

    def __getitem__(self, clips: slice) -> ColourJitter:
        return ColourJitter(self.matrix[clips], self.grey_offset[clips])

    def apply(self, pair: Tensor) -> Tensor:
        """(B, 2, 3, H, W) uint8 onset/apex -> float in [0, 1], one batched matrix product."""
        n, frames, channels, height, width = pair.shape  # frames: 2, as PAIR_GREY
        pixels = pair.float().view(n, frames * channels, height * width)
        # per frame and channel, sums of integers < 2^24 (up to 256 x 256 px): exact in float32
        mean_grey = pixels.sum(dim=2) @ PAIR_GREY / (frames * height * width)
        offset = self.grey_offset * mean_grey.unsqueeze(1)
        out = torch.baddbmm(
            offset.repeat_interleave(frames, dim=0).unsqueeze(2),
            self.matrix.repeat_interleave(frames, dim=0),
            pixels.view(n * frames, channels, -1),
        )
        return out.clamp_(0, 1).view(pair.shape)


@dataclass(frozen=True)
class Affine:
    """Per clip, flip, shift (crop with zero padding) and rotation as one affine map of
    F.grid_sample's [-1, 1] coordinates: output pixel p samples input A p + t, with
    A = rotation(angle) @ diag(flip, 1) and theta = [A | t].

    The sampling grid, p -> A p + t at every pixel centre, is a column term plus a row term;
    both are made once per batch, and `warp` only adds them. F.affine_grid, which multiplies
    every (x, y, 1) by theta, and a broadcast add over a last dimension of 2 (which does not
    vectorise) took 16x and 4.6x as long as the batched product in `warp`.
    """

    theta: Tensor  # (n, 2, 3)
    columns: Tensor  # (n, 1, 2 W): A[:, 0] x + t for each column's centre x, (x, y) interleaved
    rows: Tensor  # (n, H, 2): A[:, 1] y for each row's centre y

    @classmethod
    def draw(cls, n: int, size: int, augment: Augment, generator: torch.Generator) -> Affine:
        """Maps for `n` clips of `size` x `size` px."""
        angle = math.radians(augment.rotation) * (2 * torch.rand(n, generator=generator) - 1)
        flip = torch.where(torch.rand(n, generator=generator) < augment.flip, -1.0, 1.0)
        pad = augment.crop_padding
        shift = torch.randint(-pad, pad + 1, (n, 2), generator=generator).float() * 2 / size
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack(
            [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
        )
        centres = (torch.arange(size) * 2 + 1) / size - 1  # pixel centres, align_corners=False
        columns = centres[:, None] * theta[:, None, :, 0] + theta[:, None, :, 2]
        return cls(theta, columns.view(n, 1, 2 * size), centres[:, None] * theta[:, None, :, 1])

    def __getitem__(self, clips: slice) -> Affine:
        return Affine(self.theta[clips], self.columns[clips], self.rows[clips])

    def warp(self, images: Tensor, vectors: slice | None = None) -> Tensor:
        """Bilinear warp of (n, C, H, W) `images`, zero padding; `vectors` channels are (u, v)
        fields, turned with the image."""
        n, _, height, width = images.shape
        # spread each row's term over the W columns with a 0/1 matrix: exact, x·1 + y·0 = x
        grid = torch.baddbmm(self.columns, self.rows, _spread(width).expand(n, 2, 2 * width))
        out = F.grid_sample(
            images, grid.view(n, height, width, 2), mode="bilinear", padding_mode="zeros", align_corners=False
        )
        if vectors is not None:
            # a displacement d in the input becomes A^-1 d in the output
            inverse = torch.linalg.inv(self.theta[:, :, :2]).view(-1, 2, 2, 1, 1)
            u, v = out[:, vectors.start].clone(), out[:, vectors.start + 1].clone()
            for row in range(2):
                out[:, vectors.start + row] = inverse[:, row, 0] * u + inverse[:, row, 1] * v
        return out


@functools.cache
def _spread(width: int) -> Tensor:
    """(2, 2 W) 0/1 matrix: (x, y) @ it = (x, y, x, y, ...), W times."""
    return torch.eye(2).repeat(1, width)


# clips per step of `training_inputs`: 2 halves the ~0.13 ms of Python per step against 1; 4 was
# slower again (at ~4 MB per clip, a step no longer stays in cache)
STEP = 2


def training_inputs(
    frames: inputs.FoldFrames, rows: Tensor, kind: str, augment: Augment, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Augmented (motion, onset) for the training clips `rows`, both contiguous (B, C, H, W).

    Every random parameter is drawn first, so the result depends on the generator only, not on
    how the steps are spread over threads.
    """
    spec = inputs.input_kind(kind)
    if not spec.frames:  # stored as they are: nothing is known of what their channels mean
        if augment != OFF:
            raise ValueError(
                "input kind 'precomputed' trains without augmentation (a flip or rotation would have to know "
                f"which stored channels are vectors): set train.augment to {OFF}"
            )
        return inputs.present(frames.flow, kind)[rows], torch.empty(len(rows), 3, 0, 0)
    n, size = len(rows), frames.onset.shape[-1]
    onset_at, apex_at = frames.onset_position[rows], frames.apex_position[rows]
    if augment.frame_jitter:
        onset_at = torch.randint(0, frames.window, (n,), generator=generator)
        apex_at = torch.randint(0, frames.window, (n,), generator=generator)
    colour = ColourJitter.draw(n, augment.colour, generator) if augment.colour > 0 else None
    affine = Affine.draw(n, size, augment, generator)
    motion = torch.empty(n, spec.in_channels(None), size, size)
    onset = torch.empty(n, 3, size, size)

    def step(clips: slice) -> None:
        batch = inputs.select(
            frames,
            rows[clips],
            onset_at[clips],
            apex_at[clips],
            rgb=inputs.to_unit if colour is None else colour[clips].apply,
        )
        spec.warp(batch, affine[clips], motion[clips], onset[clips])

    _per_thread(step, [slice(start, start + STEP) for start in range(0, n, STEP)])
    return motion, onset


def _per_thread(step: Callable[[slice], None], steps: list[slice]) -> None:
    """Run the steps in one worker thread per torch thread, with torch single-threaded meanwhile.

    A step is a dozen ops of ~1 MB. As intra-op parallel work, each op waits at an OpenMP
    barrier for every thread, and while other processes held the cores that made 2 threads up
    to ~40x slower than 1; whole steps per thread have no barriers. torch ops release the GIL.
    Workers run only while the global count is 1, which each takes (and keeps) at its first op.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        list(_workers(threads, os.getpid()).map(step, steps))
    finally:
        torch.set_num_threads(threads)


@functools.cache
def _workers(threads: int, pid: int) -> ThreadPoolExecutor:
    """Kept for the process (`pid`: a forked child, whose copy has no threads, makes its own):
    fresh threads for every batch cost ~0.5 ms/sample, their first ops setting up MKL and OpenMP."""
    return ThreadPoolExecutor(threads, thread_name_prefix="mer-augment")
