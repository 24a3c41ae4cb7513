"""Model inputs: channels and shapes per kind, the missing-depth and missing-flow errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mer.cache_store import Cache, CacheWriter, ClipWindows
from mer.training import inputs

SIZE, WINDOW = 32, 3


def _texture(seed: int, size: int = SIZE) -> np.ndarray:
    """A smooth random RGB texture: something for optical flow to lock on to."""
    noise = np.random.default_rng(seed).random((size, size, 3)).astype(np.float32) * 255
    return cv2.GaussianBlur(noise, (0, 0), 1.5).clip(0, 255).astype(np.uint8)


def _cache(path, depth: bool) -> Cache:
    with CacheWriter(path, 2, WINDOW, SIZE, ["a", "b"], depth, {"dataset": {"name": "toy"}}) as writer:
        for i in range(2):
            frames = np.stack([np.roll(_texture(i), shift, axis=1) for shift in range(WINDOW)])
            depth_frames = np.full((WINDOW, SIZE, SIZE), 1000 + 10 * i, np.uint16)
            writer.add(
                ClipWindows(
                    sample_id=f"s{i}/c",
                    subject=f"s{i}",
                    label=i,
                    onset=frames,
                    apex=np.roll(frames, 2, axis=2),
                    onset_position=1,
                    apex_position=1,
                    onset_frames=[0, 1, 2],
                    apex_frames=[5, 6, 7],
                    depth_onset=depth_frames if depth else None,
                    depth_apex=depth_frames + 5 if depth else None,
                )
            )
    return Cache(path)


@pytest.fixture(scope="module")
def depth_cache(tmp_path_factory) -> Cache:
    return _cache(tmp_path_factory.mktemp("inputs") / "depth.h5", depth=True)


def test_in_channels():
    assert [inputs.in_channels(k) for k in ("difference", "flow", "depth", "rgbd")] == [3, 3, 1, 4]
    with pytest.raises(ValueError, match="unknown input kind 'optical'"):
        inputs.in_channels("optical")


@pytest.mark.parametrize("kind", inputs.FRAME_KINDS)
@pytest.mark.parametrize("size", [SIZE, 16])
def test_shapes_per_kind(depth_cache, kind, size):
    flow = np.random.default_rng(0).normal(size=(2, 3, SIZE, SIZE)) if kind == "flow" else None
    frames = inputs.load_frames(depth_cache, np.array([0, 1]), kind, size, flow)
    assert frames.onset.dtype == torch.uint8 and frames.onset.shape == (2, WINDOW, 3, size, size)
    batch = inputs.select(frames, torch.tensor([1, 0]))
    motion = inputs.motion(batch, kind)
    assert motion.shape == (2, inputs.in_channels(kind), size, size) and motion.dtype == torch.float32
    assert batch.onset.shape == (2, 3, size, size) and 0 <= batch.onset.min() and batch.onset.max() <= 1


def test_difference_and_depth_values(depth_cache):
    frames = inputs.load_frames(depth_cache, np.array([0]), "rgbd", SIZE)
    batch = inputs.select(frames, torch.tensor([0]), onset_at=torch.tensor([0]), apex_at=torch.tensor([2]))
    onset, apex = depth_cache.load("onset", [0])[0, 0], depth_cache.load("apex", [0])[0, 2]
    expected = (apex.astype(np.float32) - onset) / 255
    motion = inputs.motion(batch, "rgbd")
    np.testing.assert_allclose(motion[0, :3].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(motion[0, 3].numpy(), 5 * inputs.DEPTH_SCALE, rtol=1e-5)


def test_depth_requested_without_depth(tmp_path):
    cache = _cache(tmp_path / "rgb_only.h5", depth=False)
    for kind in ("depth", "rgbd"):
        with pytest.raises(ValueError, match=rf"input kind '{kind}' needs depth.*rgb_only\.h5.*'toy'"):
            inputs.load_frames(cache, np.array([0]), kind, SIZE)


def test_flow_kind_needs_the_stored_flow(depth_cache):
    with pytest.raises(ValueError, match=r"needs the stored flow of each of the 2 clips.*flow\.h5.*got None"):
        inputs.load_frames(depth_cache, np.array([0, 1]), "flow", SIZE)
    with pytest.raises(ValueError, match="got 1"):
        inputs.load_frames(depth_cache, np.array([0, 1]), "flow", SIZE, np.zeros((1, 3, SIZE, SIZE)))


def test_select_hands_the_uint8_pair_to_rgb(depth_cache):
    frames = inputs.load_frames(depth_cache, np.array([0, 1]), "difference", SIZE)
    seen = []
    batch = inputs.select(
        frames,
        torch.tensor([1, 0]),
        onset_at=torch.tensor([2, 0]),
        apex_at=torch.tensor([0, 1]),
        rgb=lambda pair: seen.append(pair) or pair.float() / 255,
    )
    (pair,) = seen
    onset, apex = depth_cache.load("onset", [1, 0]), depth_cache.load("apex", [1, 0])
    expected = np.stack([np.stack([onset[0, 2], apex[0, 0]]), np.stack([onset[1, 0], apex[1, 1]])])
    assert pair.dtype == torch.uint8 and pair.shape == (2, 2, 3, SIZE, SIZE)
    np.testing.assert_array_equal(pair.permute(0, 1, 3, 4, 2).numpy(), expected)
    assert torch.equal(batch.apex, pair[:, 1] / 255)


@pytest.mark.parametrize("kind", inputs.FRAME_KINDS)
def test_motion_into_out_is_motion(depth_cache, kind):
    flow = np.random.default_rng(0).normal(size=(2, 3, SIZE, SIZE)) if kind == "flow" else None
    batch = inputs.select(inputs.load_frames(depth_cache, np.array([0, 1]), kind, SIZE, flow), torch.tensor([0, 1]))
    out = torch.full((2, inputs.in_channels(kind), SIZE, SIZE), float("nan"))
    assert inputs.motion(batch, kind, out=out) is out
    assert torch.equal(out, inputs.motion(batch, kind))


def test_each_shipped_input_config_is_a_registered_kind_reading_its_own_file():
    """conf/input/<kind>.yaml states input.file for DVC; it must be the file the kind's object reads."""
    from pathlib import Path

    import yaml

    shipped = {}
    for path in sorted((Path(__file__).resolve().parents[2] / "conf" / "input").glob("*.yaml")):
        conf = yaml.safe_load(path.read_text())
        shipped[path.stem] = conf.get("input", conf)  # flow.yaml is a _global_ package (it also sets `pipeline`)
    assert sorted(shipped) == sorted(inputs.KINDS)
    for name, conf in shipped.items():
        spec = inputs.input_kind(conf["kind"])
        assert spec.name == name and (conf["file"] == "data/flow.h5") == spec.reads_flow, name


def test_what_each_kind_needs_and_makes():
    kinds = inputs.KINDS
    assert [name for name, k in kinds.items() if k.depth] == ["depth", "rgbd"]
    assert [name for name, k in kinds.items() if k.from_rgb] == ["difference"]  # what `mer predict` can make
    assert [name for name, k in kinds.items() if not k.frames] == ["precomputed"]
    assert inputs.FRAME_KINDS == ("difference", "flow", "depth", "rgbd")
    with pytest.raises(ValueError, match="'precomputed' takes its channels from the cache"):
        inputs.in_channels("precomputed")
    with pytest.raises(ValueError, match="'precomputed' is never warped"):
        kinds["precomputed"].warp(None, None, torch.empty(0), torch.empty(0))  # type: ignore[arg-type]


def test_a_frame_kind_on_a_cache_of_inputs_and_back_says_which_to_use(depth_cache, tmp_path):
    from mer.cache_store import write_precomputed

    clips = [("s0/c", "s0", 0), ("s1/c", "s1", 1)]
    write_precomputed(tmp_path / "inputs.h5", np.zeros((2, 3, 8, 8), np.float32), clips, ["a", "b"], {})
    with pytest.raises(ValueError, match=r"holds precomputed inputs and no frames: use input kind 'precomputed'"):
        inputs.load_frames(Cache(tmp_path / "inputs.h5"), np.array([0]), "difference", 8)
    with pytest.raises(ValueError, match=r"holds frames: use kind difference, flow, depth or rgbd"):
        inputs.load_frames(depth_cache, np.array([0]), "precomputed", 8)
