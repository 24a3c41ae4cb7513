"""MMNet's CA maps: the forward's own tensors (same logits, shapes of the four blocks) and the figure data
helpers against hand computations. tests/workflow/test_attention_pipeline.py checks the stage's trained maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mer import attention
from mer.models.mmnet import MMNet

from .test_mmnet import SMALL, inputs, randomize_norm_stats


def test_maps_at_224_are_112_56_28_14_and_leave_the_logits_unchanged():
    model = MMNet(num_classes=5).eval()  # the full network, freshly built
    motion, onset = inputs(2, 3, 224)
    logits, maps = attention.attention_maps(model, motion, onset)
    with torch.no_grad():
        assert torch.equal(logits, model(motion, onset))  # the hooks change nothing
    assert [a.shape for a in maps] == [(2, 112, 112), (2, 56, 56), (2, 28, 28), (2, 14, 14)]
    assert all(bool(((a >= 0) & (a <= 1)).all()) for a in maps)
    assert not any(block._forward_hooks for block in (model.layer1, model.layer2, model.layer3, model.layer4))


def test_maps_are_what_each_block_multiplied_its_output_by():
    """Hooked independently: each CA block returns (out * A, A); A must be the returned map, and A of block k
    must be its own sigmoid map times max-pool(A of block k - 1)."""
    model = MMNet(num_classes=3, input_size=64, **SMALL).eval()
    randomize_norm_stats(model)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    raw: list[torch.Tensor] = []
    blocks = [model.layer1, model.layer2, model.layer3, model.layer4]
    hooks = [b.register_forward_hook(lambda _m, _i, out: seen.append(out)) for b in blocks]
    hooks += [b.attention.register_forward_hook(lambda _m, _i, out: raw.append(out)) for b in blocks]
    motion, onset = inputs(2, 3, 64)
    _, found = attention.attention_maps(model, motion, onset)
    for h in hooks:
        h.remove()
    assert len(seen) == 4 and len(raw) == 4
    maps = [torch.from_numpy(a)[:, None] for a in found]
    for k, (a, (_, returned)) in enumerate(zip(maps, seen, strict=True)):
        assert torch.equal(a, returned)
        prior = torch.ones_like(a) if k == 0 else nn.functional.max_pool2d(maps[k - 1], 3, 2, 1)
        torch.testing.assert_close(a, raw[k] * prior)


def test_figure_data_by_hand():
    a = np.zeros((1, 2, 2), np.float32)
    a[0, 1, 0] = 1.0
    up = attention.upsample(a, 4)
    assert up.shape == (1, 4, 4) and up[0, 3, 0] == pytest.approx(1.0) and up[0, 0, 3] == pytest.approx(0.0)
    blocks = [np.array([[[0.0, 2.0], [4.0, 6.0]]]), np.full((1, 1, 1), 3.0)]  # constant map scales to 0
    np.testing.assert_allclose(attention.mean_map(blocks, 2), [[[0.0, 1 / 6], [2 / 6, 0.5]]], atol=1e-6)
    maps = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    means = attention.class_means(maps, np.array([0, 0, 2]), 3)
    np.testing.assert_allclose(means[0], maps[:2].mean(0))
    assert np.isnan(means[1]).all()
    np.testing.assert_array_equal(attention.peaks(maps), [[1, 1]] * 3)
    region = attention.moving_region(np.array([[1.0, 2.0]]), 1.0, 4)
    assert region.sum() == 5 and region[2, 1] and region[1, 1] and not region[1, 0]


def test_template_points_land_where_the_crop_rule_puts_the_eyes():
    """The crop is `width` eye distances wide, centred between the eyes, eyes `above` d from its top."""
    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [100.0, 120.0]
    landmarks[42:48] = [180.0, 120.0]  # d = 80
    crop = {"size": 224, "width": 2.2, "above": 0.6, "below": 1.6}
    eyes = attention.to_input_pixels(np.array([[100.0, 120.0], [180.0, 120.0]]), landmarks, crop, 112)
    d = 112 / 2.2
    np.testing.assert_allclose(eyes, [[56 - d / 2 - 0.5, 0.6 * d - 0.5], [56 + d / 2 - 0.5, 0.6 * d - 0.5]], atol=1e-9)
