"""data/flow.h5, the file `flow` hands to the folds and `attention` when the input kind reads flow: written clip by
clip by `FlowWriter` (from mer.flow, which computes the flows), read by `read` (mer.training.inputs.load_fold).

Schema: `flow` float32 (n, 3, S, S) with channels u, v (px at S x S, positive u = rightwards, v = downwards)
and magnitude, one chunk per clip; `sample_id` str (n,), in the cache's order; attrs `size` (S) and
`cache_params` (the cache's provenance, to catch a stale file).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from mer.cache_store import STR, Cache
from mer.h5_writer import H5Writer


class FlowWriter(H5Writer):
    """Streams the flows of every clip of `cache`, in its order; the file appears at `path` only when the `with`
    block ends without an exception and every clip's flow was added."""

    def __init__(self, path: str | Path, cache: Cache, size: int) -> None:
        n = len(cache)
        super().__init__(path, "flow", expected=n)
        self._flows = self._file.create_dataset("flow", (n, 3, size, size), np.float32, chunks=(1, 3, size, size))
        self._file.create_dataset("sample_id", data=np.array(cache.sample_ids, dtype=object), dtype=STR)
        self._file.attrs.update(size=size, cache_params=json.dumps(cache.params))

    def add(self, flow: np.ndarray) -> None:
        """The next clip's (3, S, S) flow."""
        self._flows[self.written] = flow
        self.written += 1


def read(path: str | Path, cache: Cache, indices: np.ndarray) -> np.ndarray:
    """The stored flows (len(indices), 3, S, S) of the cache's clips `indices`; refuses a stale file."""
    with h5py.File(path, "r") as f:
        stored = [s.decode() for s in f["sample_id"][()]]
        if stored != cache.sample_ids or json.loads(f.attrs["cache_params"]) != cache.params:
            raise ValueError(
                f"{path} was computed from a different cache than {cache.path}; rerun the flow stage (dvc repro flow)"
            )
        return np.stack([f["flow"][int(i)] for i in indices]) if len(indices) else f["flow"][:0]
