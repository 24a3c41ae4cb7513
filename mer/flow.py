"""TV-L1 optical flow onset -> apex for every clip of the cache, computed once (DVC stage `flow`).

TV-L1 costs ~0.6 s per frame pair at 112 px and ~1.5 s at 224 px on one core, far too slow
to run per training step or per fold, so the `flow` stage computes it once per clip at the
LABELLED frames and stores it beside the cache. Training resizes it to the input size
(vectors scale with the image).

Schema of `data/flow.h5`: `flow` float32 (n, 3, S, S) with channels u, v (px at S x S,
positive u = rightwards, v = downwards) and magnitude; `sample_id` str (n,), in the cache's
order; attrs `size` (S) and `cache_params` (the cache's provenance, to catch a stale file).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np

from mer.cache_store import STR, Cache
from mer.io import atomic_path
from mer.parallel import map_clips


def tvl1_flow(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """(3, H, W) float32 u, v, magnitude of the TV-L1 flow between two RGB uint8 frames."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in (onset, apex)]
    # OpenCV's type stubs cover the main modules only, not contrib's optflow
    uv = cv2.optflow.DualTVL1OpticalFlow_create().calc(grey[0], grey[1], None)  # type: ignore[attr-defined]
    return np.concatenate([uv, np.linalg.norm(uv, axis=2, keepdims=True)], axis=2).transpose(2, 0, 1)


def labelled_pair(cache: Cache, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The labelled onset and apex frames of clip `index`, area-resized to size x size."""
    frames = []
    for name in ("onset", "apex"):
        frame = cache.load(name, np.array([index]))[0, getattr(cache, f"{name}_position")[index]]
        if frame.shape[0] != size:
            frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
        frames.append(frame)
    return frames[0], frames[1]


def write_flows(cache: Cache, out: str | Path, size: int, workers: int = 0) -> np.ndarray:
    """Compute every clip's flow at size x size into `out` (atomically); returns the mean magnitude per clip.

    Workers get clip indices and read their own frames, so memory stays flat in the number of clips.
    """
    jobs = [(i, size) for i in range(len(cache))]
    magnitude = np.zeros(len(cache), np.float32)
    with atomic_path(out, ".h5") as tmp, h5py.File(tmp, "w") as f:
        flows = f.create_dataset("flow", (len(cache), 3, size, size), np.float32, chunks=(1, 3, size, size))
        f.create_dataset("sample_id", data=np.array(cache.sample_ids, dtype=object), dtype=STR)
        f.attrs.update(size=size, cache_params=json.dumps(cache.params))
        for i, flow in enumerate(
            map_clips(
                _flow_of_clip, jobs, workers=workers, desc="flow", initializer=_open_cache, initargs=(str(cache.path),)
            )
        ):
            flows[i] = flow
            magnitude[i] = flow[2].mean()
    return magnitude


def read_flows(path: str | Path, cache: Cache, indices: np.ndarray) -> np.ndarray:
    """The stored flows (len(indices), 3, S, S) of the cache's clips `indices`; refuses a stale file."""
    with h5py.File(path, "r") as f:
        stored = [s.decode() for s in f["sample_id"][()]]
        if stored != cache.sample_ids or json.loads(f.attrs["cache_params"]) != cache.params:
            raise ValueError(
                f"{path} was computed from a different cache than {cache.path}; rerun the flow stage (dvc repro flow)"
            )
        return np.stack([f["flow"][int(i)] for i in indices]) if len(indices) else f["flow"][:0]


_worker_cache: Cache | None = None


def _open_cache(path: str) -> None:
    """Per worker: the cache to read frames from, and one OpenCV thread (the pool already uses every core)."""
    global _worker_cache
    _worker_cache = Cache(path)
    cv2.setNumThreads(1)


def _flow_of_clip(job: tuple[int, int]) -> np.ndarray:
    index, size = job
    assert _worker_cache is not None, "_open_cache runs first in every worker"
    return tvl1_flow(*labelled_pair(_worker_cache, index, size))
