"""data/flow.h5 (mer.flow_store): the file appears only when every clip's flow was written."""

from __future__ import annotations

import numpy as np
import pytest

from mer import flow_store
from mer.cache_store import Cache, CacheWriter, ClipWindows


def _cache(path) -> Cache:
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with CacheWriter(path, 2, 2, 8, ["a"], False, {"dataset": {"name": "toy"}}) as writer:
        for i in range(2):
            writer.add(ClipWindows(f"s{i}/c", f"s{i}", 0, frames, frames, 0, 1, [0, 1], [2, 3]))
    return Cache(path)


def test_flows_read_back_by_clip_index(tmp_path):
    cache = _cache(tmp_path / "cache.h5")
    flows = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    with flow_store.FlowWriter(tmp_path / "flow.h5", cache, 4) as writer:
        for f in flows:
            writer.add(f)
    np.testing.assert_array_equal(flow_store.read(tmp_path / "flow.h5", cache, np.array([1, 0])), flows[[1, 0]])
    assert flow_store.read(tmp_path / "flow.h5", cache, np.array([], int)).shape == (0, 3, 4, 4)


def test_an_incomplete_or_failed_write_leaves_no_file(tmp_path):
    cache = _cache(tmp_path / "cache.h5")
    with pytest.raises(RuntimeError, match="flow: 1 of 2 clips written"):
        with flow_store.FlowWriter(tmp_path / "flow.h5", cache, 4) as writer:
            writer.add(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="boom"), flow_store.FlowWriter(tmp_path / "flow.h5", cache, 4) as writer:
        raise ValueError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["cache.h5"]
