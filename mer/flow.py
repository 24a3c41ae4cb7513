"""TV-L1 optical flow onset -> apex for every clip of the cache, computed once (DVC stage `flow`).

TV-L1 costs ~0.6 s per frame pair at 112 px and ~1.5 s at 224 px on one core, far too slow
to run per training step or per fold, so the `flow` stage computes it once per clip at the
LABELLED frames and stores it beside the cache, in data/flow.h5 (schema: mer.flow_store). Training
resizes it to the input size (vectors scale with the image).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mer.cache_store import Cache
from mer.flow_store import FlowWriter
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


def compute_flows(cache: Cache, out: str | Path, size: int, workers: int = 0) -> np.ndarray:
    """Compute every clip's flow at size x size into `out` (mer.flow_store); returns the mean magnitude per clip.

    Workers get clip indices and read their own frames, so memory stays flat in the number of clips.
    """
    jobs = [(i, size) for i in range(len(cache))]
    magnitude = np.zeros(len(cache), np.float32)
    with FlowWriter(out, cache, size) as writer:
        for i, flow in enumerate(
            map_clips(
                _flow_of_clip, jobs, workers=workers, desc="flow", initializer=_open_cache, initargs=(str(cache.path),)
            )
        ):
            writer.add(flow)
            magnitude[i] = flow[2].mean()
    return magnitude


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
