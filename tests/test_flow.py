"""TV-L1 flow: a known shift, the stored file in cache order, rescaling to the input size, stale files."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest

from mer import flow, flow_store
from mer.cache_store import Cache, CacheWriter, ClipWindows
from mer.training import inputs

SIZE, WINDOW, SHIFT = 48, 2, 2


def _texture(seed: int, size: int = SIZE) -> np.ndarray:
    """A smooth random RGB texture: something for optical flow to lock on to."""
    noise = np.random.default_rng(seed).random((size, size, 3)).astype(np.float32) * 255
    return cv2.GaussianBlur(noise, (0, 0), 1.5).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Cache:
    """Three clips whose labelled apex is the labelled onset moved SHIFT px right (clip 2: down)."""
    path = tmp_path_factory.mktemp("flow") / "cache.h5"
    with CacheWriter(path, 3, WINDOW, SIZE, ["a", "b"], False, {"dataset": {"name": "toy"}}) as writer:
        for i in range(3):
            onset = np.stack([_texture(10 * i + k) for k in range(WINDOW)])
            apex = np.roll(onset, SHIFT, axis=1 if i == 2 else 2)
            writer.add(
                ClipWindows(
                    sample_id=f"s{i}/c",
                    subject=f"s{i}",
                    label=i % 2,
                    onset=onset,
                    apex=apex,
                    onset_position=1,
                    apex_position=1,
                    onset_frames=[0, 1],
                    apex_frames=[5, 6],
                )
            )
    return Cache(path)


def test_flow_of_a_known_shift():
    image = _texture(3, 64)
    uvm = flow.tvl1_flow(image, np.roll(image, 2, axis=1))  # content moves 2 px right
    inner = uvm[:, 8:-8, 8:-8]
    assert uvm.shape == (3, 64, 64) and uvm.dtype == np.float32
    assert abs(inner[0].mean() - 2) < 0.2 and abs(inner[1].mean()) < 0.2
    np.testing.assert_allclose(inner[2], np.hypot(inner[0], inner[1]), rtol=1e-5)


@pytest.mark.parametrize("workers", [1, 2])
def test_stored_flows_follow_the_cache(cache, tmp_path, workers):
    out = tmp_path / "flow.h5"
    magnitude = flow.compute_flows(cache, out, SIZE, workers=workers)
    stored = flow_store.read(out, cache, np.array([2, 0]))
    assert stored.shape == (2, 3, SIZE, SIZE)
    inner = stored[:, :, 8:-8, 8:-8]
    assert abs(inner[0, 1].mean() - SHIFT) < 0.3 and abs(inner[0, 0].mean()) < 0.3  # clip 2 moved down
    assert abs(inner[1, 0].mean() - SHIFT) < 0.3 and abs(inner[1, 1].mean()) < 0.3  # clip 0 moved right
    np.testing.assert_allclose(magnitude, flow_store.read(out, cache, np.arange(3))[:, 2].mean(axis=(1, 2)), rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["flow.h5"]  # no temporary left behind


def test_flow_is_computed_at_its_own_size_and_rescaled_for_the_model(cache, tmp_path):
    flow.compute_flows(cache, tmp_path / "half.h5", SIZE // 2, workers=1)
    stored = flow_store.read(tmp_path / "half.h5", cache, np.array([0]))
    assert stored.shape == (1, 3, SIZE // 2, SIZE // 2)
    assert abs(stored[0, 0, 4:-4, 4:-4].mean() - SHIFT / 2) < 0.3  # px at the flow's size
    frames = inputs.load_frames(cache, np.array([0]), "flow", SIZE, stored)
    assert frames.flow.shape == (1, 3, SIZE, SIZE)
    assert abs(frames.flow[0, 0, 8:-8, 8:-8].mean().item() - SHIFT) < 0.4  # back in px at the model's size


def test_a_flow_file_from_another_cache_is_refused(cache, tmp_path):
    out = tmp_path / "flow.h5"
    flow.compute_flows(cache, out, SIZE, workers=1)
    with h5py.File(out, "a") as f:
        f.attrs["cache_params"] = '{"dataset": {"name": "other"}}'
    with pytest.raises(ValueError, match=r"flow\.h5 was computed from a different cache.*dvc repro flow"):
        flow_store.read(out, cache, np.array([0]))
