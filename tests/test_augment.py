"""Batched training augmentation: flow vectors follow the warp, colour factors are shared per clip."""
from __future__ import annotations

import torch

from mer import augment


def test_flip_negates_flow_u():
    flow = torch.zeros(1, 3, 8, 8)
    flow[:, 0], flow[:, 1] = 2.0, 0.5
    flow[:, 0, :, :4] = 1.0  # left half different, to see the mirror
    out = augment.random_affine(flow, augment.Augment(flip=1.0, crop_padding=0, rotation=0), torch.Generator(),
                              vectors=slice(0, 2))
    torch.testing.assert_close(out[:, 0], -flow[:, 0].flip(-1))
    torch.testing.assert_close(out[:, 1:], flow[:, 1:].flip(-1))


def test_colour_jitter_shares_factors_within_a_clip():
    frames = torch.rand(4, 3, 8, 8)
    onset, apex = augment.colour_jitter(frames, frames.clone(), 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(onset, apex) and not torch.equal(onset, frames)
