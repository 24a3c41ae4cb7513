"""Batched training augmentation against straightforward computations: the colour jitter as
torchvision's sequential adjustments, the warp as F.affine_grid + F.grid_sample, the whole of
`training_inputs` as colour -> motion -> warp of motion and onset; flow vectors follow the warp."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2.functional import rgb_to_grayscale

from mer.training import augment, inputs

SIZE, WINDOW = 24, 3


def _sequential_colour(onset: Tensor, apex: Tensor, factors: Tensor) -> tuple[Tensor, Tensor]:
    """Brightness, contrast (mean grey of both frames after brightness), saturation, then clamp, one
    after another on float [0, 1] images, with factors (3, B) shared by a clip's two frames."""
    brightness, contrast, saturation = factors.view(3, -1, 1, 1, 1, 1)
    pair = torch.stack([onset, apex], dim=1) * brightness
    mean = rgb_to_grayscale(pair).mean(dim=(1, 2, 3, 4), keepdim=True)
    pair = contrast * pair + (1 - contrast) * mean
    pair = (saturation * pair + (1 - saturation) * rgb_to_grayscale(pair)).clamp(0, 1)
    return pair[:, 0], pair[:, 1]


def _reference_warp(images: Tensor, theta: Tensor) -> Tensor:
    """The warp as torch documents it: F.affine_grid, then bilinear F.grid_sample with zero padding."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _factors(n: int, strength: float, seed: int) -> Tensor:
    """The factors ColourJitter.draw takes from a generator seeded with `seed`."""
    return 1 + strength * (2 * torch.rand(3, n, generator=torch.Generator().manual_seed(seed)) - 1)


@pytest.mark.parametrize("strength", [0.2, 0.9])  # 0.9: the clamp is engaged
def test_colour_jitter_is_the_sequential_adjustments(strength):
    pair = torch.randint(0, 256, (5, 2, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    jitter = augment.ColourJitter.draw(5, strength, torch.Generator().manual_seed(2))
    out = jitter.apply(pair)
    onset, apex = _sequential_colour(pair[:, 0] / 255, pair[:, 1] / 255, _factors(5, strength, 2))
    torch.testing.assert_close(out[:, 0], onset, atol=2e-6, rtol=0)
    torch.testing.assert_close(out[:, 1], apex, atol=2e-6, rtol=0)
    if strength == 0.9:
        assert (out == 0).any() and (out == 1).any()


def test_colour_jitter_shares_factors_within_a_clip():
    frames = torch.randint(0, 256, (4, 1, 3, 8, 8), dtype=torch.uint8)
    out = augment.ColourJitter.draw(4, 0.3, torch.Generator().manual_seed(0)).apply(frames.expand(4, 2, 3, 8, 8))
    assert torch.equal(out[:, 0], out[:, 1]) and not torch.equal(out[:, 0], frames[:, 0] / 255)


def test_warp_is_affine_grid_and_grid_sample():
    images = torch.rand(4, 5, SIZE, SIZE)
    affine = augment.Affine.draw(
        4, SIZE, augment.Augment(rotation=30, crop_padding=4), torch.Generator().manual_seed(0)
    )
    expected = _reference_warp(images, affine.theta)
    torch.testing.assert_close(affine[1:].warp(images[1:]), expected[1:], atol=1e-5, rtol=0)


def test_flip_negates_flow_u():
    flow = torch.zeros(1, 3, 8, 8)
    flow[:, 0], flow[:, 1] = 2.0, 0.5
    flow[:, 0, :, :4] = 1.0  # left half different, to see the mirror
    affine = augment.Affine.draw(1, 8, augment.Augment(flip=1.0, crop_padding=0, rotation=0), torch.Generator())
    out = affine.warp(flow, vectors=slice(0, 2))
    torch.testing.assert_close(out[:, 0], -flow[:, 0].flip(-1))
    torch.testing.assert_close(out[:, 1:], flow[:, 1:].flip(-1))


def _blob(x: float, y: float, size: int = 48) -> Tensor:
    grid_y, grid_x = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    return torch.exp(-((grid_x - x) ** 2 + (grid_y - y) ** 2) / (2 * 2.0**2)).float()


def _centroid(image: Tensor) -> Tensor:
    grid_y, grid_x = torch.meshgrid(torch.arange(image.shape[0]), torch.arange(image.shape[1]), indexing="ij")
    return torch.stack([(image * grid_x).sum(), (image * grid_y).sum()]) / image.sum()


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_flow_vectors_turn_with_the_image(flip):
    """A blob moved by d = (u, v) px: after the warp, the blob's move is the warped flow vector."""
    d = torch.tensor([3.0, 1.0])
    onset, apex = _blob(22, 24), _blob(22 + d[0], 24 + d[1])
    flow = torch.cat([d.view(2, 1, 1).expand(2, 48, 48), torch.zeros(1, 48, 48)])  # uniform (u, v, magnitude)
    affine = augment.Affine.draw(
        1, 48, augment.Augment(flip=flip, rotation=25, crop_padding=3), torch.Generator().manual_seed(3)
    )
    assert abs(affine.theta[0, 1, 0]) > math.sin(math.radians(20))  # a real rotation
    out = affine.warp(torch.cat([flow, onset[None], apex[None]])[None], vectors=slice(0, 2))[0]
    moved = _centroid(out[4]) - _centroid(out[3])
    torch.testing.assert_close(out[:2, 24, 24], moved, atol=0.03, rtol=0)


def _frames(kind: str) -> inputs.FoldFrames:
    g = torch.Generator().manual_seed(5)
    n = 7
    depth = kind in ("depth", "rgbd")
    return inputs.FoldFrames(
        rgb=torch.randint(0, 256, (n, 2, WINDOW, 3, SIZE, SIZE), dtype=torch.uint8, generator=g),
        onset_position=torch.randint(0, WINDOW, (n,), generator=g),
        apex_position=torch.randint(0, WINDOW, (n,), generator=g),
        depth_onset=torch.rand(n, WINDOW, 1, SIZE, SIZE, generator=g) * 1000 if depth else None,
        depth_apex=torch.rand(n, WINDOW, 1, SIZE, SIZE, generator=g) * 1000 if depth else None,
        flow=torch.randn(n, 3, SIZE, SIZE, generator=g) if kind == "flow" else None,
    )


def _reference_inputs(
    frames: inputs.FoldFrames, rows: Tensor, kind: str, aug: augment.Augment, seed: int
) -> tuple[Tensor, Tensor]:
    """The whole batch at once: pick, colour one after another, motion, then warp motion and onset."""
    g = torch.Generator().manual_seed(seed)
    n = len(rows)
    onset_at, apex_at = frames.onset_position[rows], frames.apex_position[rows]
    if aug.frame_jitter:
        onset_at, apex_at = torch.randint(0, WINDOW, (n,), generator=g), torch.randint(0, WINDOW, (n,), generator=g)
    onset, apex = frames.onset[rows, onset_at] / 255, frames.apex[rows, apex_at] / 255
    if aug.colour > 0:
        onset, apex = _sequential_colour(onset, apex, 1 + aug.colour * (2 * torch.rand(3, n, generator=g) - 1))
    angle = math.radians(aug.rotation) * (2 * torch.rand(n, generator=g) - 1)
    flip = torch.where(torch.rand(n, generator=g) < aug.flip, -1.0, 1.0)
    shift = torch.randint(-aug.crop_padding, aug.crop_padding + 1, (n, 2), generator=g).float() * 2 / SIZE
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    depth = None
    if frames.depth_onset is not None:
        depth = (frames.depth_apex[rows, apex_at] - frames.depth_onset[rows, onset_at]) * inputs.DEPTH_SCALE
    motion = {
        "difference": lambda: apex - onset,
        "flow": lambda: frames.flow[rows],
        "depth": lambda: depth,
        "rgbd": lambda: torch.cat([apex - onset, depth], dim=1),
    }[kind]()
    both = _reference_warp(torch.cat([motion, onset], dim=1), theta)
    if kind == "flow":  # (u, v) -> A^-1 (u, v), A = rotation @ diag(flip, 1)
        u, v = both[:, 0].clone(), both[:, 1].clone()
        c, s, f = cos.view(-1, 1, 1), sin.view(-1, 1, 1), flip.view(-1, 1, 1)
        both[:, 0], both[:, 1] = f * (c * u + s * v), c * v - s * u
    return both[:, :-3], both[:, -3:]


@pytest.mark.parametrize("kind", inputs.FRAME_KINDS)
@pytest.mark.parametrize(
    "aug", [augment.Augment(rotation=20, crop_padding=4), augment.Augment(frame_jitter=False, colour=0, flip=0)]
)
def test_training_inputs_is_the_straightforward_pipeline(kind, aug, monkeypatch):
    frames, rows = _frames(kind), torch.tensor([6, 0, 3, 1, 4])
    expected = _reference_inputs(frames, rows, kind, aug, seed=9)
    for step in (1, 2, 5):  # the clips per step change nothing
        monkeypatch.setattr(augment, "STEP", step)
        motion, onset = augment.training_inputs(frames, rows, kind, aug, torch.Generator().manual_seed(9))
        assert motion.is_contiguous() and onset.is_contiguous()
        torch.testing.assert_close(motion, expected[0], atol=5e-5, rtol=1e-5)
        torch.testing.assert_close(onset, expected[1], atol=5e-5, rtol=0)


def test_training_inputs_are_deterministic_per_seed_whatever_the_threads():
    frames, rows = _frames("difference"), torch.tensor([2, 5, 1, 0, 6])
    before = torch.get_num_threads()
    runs = []
    for threads, seed in ((1, 3), (2, 3), (2, 4)):
        torch.set_num_threads(threads)
        try:
            runs.append(
                augment.training_inputs(
                    frames, rows, "difference", augment.Augment(), torch.Generator().manual_seed(seed)
                )
            )
            assert torch.get_num_threads() == threads  # restored after the worker threads
        finally:
            torch.set_num_threads(before)
    first, again, other = runs
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
