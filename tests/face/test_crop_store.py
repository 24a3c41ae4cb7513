"""data/crops.h5: what crop writes is what cache reads, index included; a failed stage leaves no file."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from mer.face.crop import Cropped, CropSettings
from mer.face.crop_store import Crops, CropsWriter

SETTINGS = CropSettings(size=8, width=2.2, above=0.6, below=1.6, window=3)


def _clip(sample_id: str, numbers: list[int], depth: bool, seed: int) -> Cropped:
    rng = np.random.default_rng(seed)
    m = len(numbers)
    return Cropped(
        sample_id,
        numbers[:3],
        numbers[-3:],
        numbers,
        rng.integers(0, 256, (m, 8, 8, 3), dtype=np.uint8),
        rng.integers(0, 65536, (m, 8, 8), dtype=np.uint16) if depth else None,
        0.0,
        0.0,
    )


def _row(sample_id: str, onset: int, apex: int) -> SimpleNamespace:
    return SimpleNamespace(sample_id=sample_id, subject="sub01", label_index=2, onset=onset, apex=apex)


def test_windows_read_back_exactly_as_cropped(tmp_path):
    plain = _clip("sub01/EP01", [10, 11, 12, 13, 14], depth=False, seed=0)
    deep = _clip("sub01/EP02", [3, 4, 5], depth=True, seed=1)  # both windows the same three frames
    with CropsWriter(tmp_path / "crops.h5", SETTINGS) as writer:
        writer.add(plain)
        writer.add(deep)
        assert np.array_equal(writer.frame("sub01/EP01", 13), plain.rgb[3])
    with Crops(tmp_path / "crops.h5") as crops:
        assert list(crops.clips) == ["sub01/EP01", "sub01/EP02"]  # crop order, not HDF5's alphabetical one
        assert (crops.size, crops.window) == (8, 3) and crops.settings["width"] == 2.2
        assert crops.clips["sub01/EP02"].depth and not crops.clips["sub01/EP01"].depth
        windows = crops.windows(_row("sub01/EP01", 11, 13))
        deep_windows = crops.windows(_row("sub01/EP02", 3, 5))
        frames = crops.frames("sub01/EP01")
    assert np.array_equal(windows.onset, plain.rgb[0:3]) and np.array_equal(windows.apex, plain.rgb[2:5])
    assert (windows.onset_position, windows.apex_position) == (1, 1)
    assert windows.onset_frames == [10, 11, 12] and windows.apex_frames == [12, 13, 14]
    assert windows.depth_onset is None and windows.label == 2
    assert deep_windows.depth_apex is not None and np.array_equal(deep_windows.depth_apex, deep.depth)
    assert deep_windows.apex_position == 2
    assert sorted(frames) == [10, 11, 12, 13, 14] and np.array_equal(frames[12], plain.rgb[2])


def test_a_failed_stage_leaves_the_previous_file_and_no_temporary(tmp_path):
    with CropsWriter(tmp_path / "crops.h5", SETTINGS) as writer:
        writer.add(_clip("a", [1, 2, 3], depth=False, seed=0))
    with pytest.raises(RuntimeError, match="boom"), CropsWriter(tmp_path / "crops.h5", SETTINGS) as writer:
        writer.add(_clip("b", [1, 2, 3], depth=False, seed=1))
        raise RuntimeError("boom")
    with Crops(tmp_path / "crops.h5") as crops:
        assert list(crops.clips) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["crops.h5"]


def test_another_hdf5_file_is_named_and_the_fix_given(tmp_path):
    with h5py.File(tmp_path / "cache.h5", "w") as f:
        f.attrs["window"] = 3
    with pytest.raises(ValueError, match=r"cache\.h5: not a crops file .*re-run the crop stage \(`dvc repro crop`\)"):
        Crops(tmp_path / "cache.h5")
