"""The HDF5 cache schema: round trip, folds, and no file after an interrupted write."""

from __future__ import annotations

import numpy as np
import pytest

from mer.cache_store import Cache, CacheWriter, ClipWindows


def _clip(i: int, subject: str, depth: bool) -> ClipWindows:
    rng = np.random.default_rng(i)
    return ClipWindows(
        sample_id=f"{subject}/c{i}",
        subject=subject,
        label=i % 3,
        onset=rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8),
        apex=rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8),
        onset_position=1,
        apex_position=2,
        onset_frames=[i, i + 1, i + 2, i + 3],
        apex_frames=[9, 10, 11, 12],
        depth_onset=rng.integers(0, 65536, (4, 16, 16), dtype=np.uint16) if depth else None,
        depth_apex=rng.integers(0, 65536, (4, 16, 16), dtype=np.uint16) if depth else None,
    )


@pytest.mark.parametrize("depth", [False, True])
def test_round_trip(tmp_path, depth):
    clips = [_clip(0, "sub01", depth), _clip(1, "sub02", depth), _clip(2, "sub01", depth)]
    with CacheWriter(tmp_path / "c.h5", 3, 4, 16, ["a", "b", "c"], depth, {"crop": {"size": 16}}) as writer:
        for c in clips:
            writer.add(c)
    cache = Cache(tmp_path / "c.h5")
    assert len(cache) == 3 and cache.classes == ["a", "b", "c"] and cache.params == {"crop": {"size": 16}}
    assert cache.sample_ids == ["sub01/c0", "sub02/c1", "sub01/c2"] and list(cache.labels) == [0, 1, 2]
    np.testing.assert_array_equal(cache.load("apex", [2]), clips[2].apex[None])
    np.testing.assert_array_equal(cache.load("onset"), np.stack([c.onset for c in clips]))
    train, test = cache.fold("sub01")
    assert list(train) == [1] and list(test) == [0, 2]
    assert cache.has_depth == depth
    if depth:
        assert cache.load("depth_onset", [1]).dtype == np.uint16
        np.testing.assert_array_equal(cache.load("depth_apex", [1])[0], clips[1].depth_apex)
    with pytest.raises(KeyError, match="subject 'sub09' not in"):
        cache.fold("sub09")


def test_incomplete_write_leaves_no_file(tmp_path):
    with (
        pytest.raises(RuntimeError, match="1 of 2 clips written"),
        CacheWriter(tmp_path / "c.h5", 2, 4, 16, ["a"], False, {}) as writer,
    ):
        writer.add(_clip(0, "sub01", False))
    assert not (tmp_path / "c.h5").exists() and list(tmp_path.iterdir()) == []


def test_a_failed_stage_leaves_the_previous_file_and_no_temporary(tmp_path):
    with CacheWriter(tmp_path / "c.h5", 1, 4, 16, ["a"], False, {}) as writer:
        writer.add(_clip(0, "sub01", False))
    before = (tmp_path / "c.h5").read_bytes()
    with pytest.raises(ValueError, match="boom"), CacheWriter(tmp_path / "c.h5", 1, 4, 16, ["a"], False, {}) as writer:
        writer.add(_clip(1, "sub02", False))
        raise ValueError("boom")
    assert (tmp_path / "c.h5").read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["c.h5"]


def test_windows_are_stored_one_clip_per_chunk_uncompressed(tmp_path):
    """The layout the module docstring promises (compression was measured not to pay)."""
    h5py = pytest.importorskip("h5py")
    with CacheWriter(tmp_path / "c.h5", 1, 4, 16, ["a"], True, {}) as writer:
        writer.add(_clip(0, "sub01", True))
    with h5py.File(tmp_path / "c.h5", "r") as f:
        for name in ("onset", "apex", "depth_onset", "depth_apex"):
            assert f[name].chunks == (1, *f[name].shape[1:]) and f[name].compression is None
