"""data/cache.h5, the training cache: the file `cache` (or `precomputed`) hands to `flow`, the folds
(`train@<subject>-<seed>`, `final@all`) and `attention`. Written clip by clip by `CacheWriter` (or in one go by
`write_precomputed`), read by `Cache`.

Schema (n clips, k = window frames, S = crop size):
- `onset`, `apex`: uint8 (n, k, S, S, 3) RGB, the k frames around each labelled frame,
  chunked one clip per chunk, uncompressed: lzf saved ~5% of the size of these noisy crops
  for ~8x the write and ~6x the read time (gzip: ~15% for ~20x; benchmarks/preprocess.py).
- `depth_onset`, `depth_apex`: uint16 (n, k, S, S), only when the data set has depth.
- `onset_position`, `apex_position`: int (n,), where the labelled frame sits in its window.
- `onset_frames`, `apex_frames`: int (n, k), the absolute frame numbers of the windows.
- `label`: int (n,) class index; `subject`, `sample_id`: str (n,).
- attrs: `classes` (list), `window` (k), `size` (S), `params` (JSON provenance: the data set and protocol
  ingest recorded, and the settings crop recorded; never a picture's knob, so a preview does not change the file).
Reading a sample never decodes a JPEG or touches the raw data.

A cache of precomputed inputs (mer.datasets.precomputed: inputs made elsewhere, no frames) holds instead
`motion`: float32 (n, C, S, S), the model input of each clip, with `label`, `subject`, `sample_id` and the
attrs `classes`, `size`, `params`, `window` 0; it has no onset/apex windows (`Cache.has_frames` is False,
the positions are -1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from mer.h5_writer import H5Writer
from mer.io import atomic_path

STR = h5py.string_dtype()


@dataclass(frozen=True)
class ClipWindows:
    sample_id: str
    subject: str
    label: int
    onset: np.ndarray  # (k, S, S, 3) uint8
    apex: np.ndarray
    onset_position: int
    apex_position: int
    onset_frames: list[int]
    apex_frames: list[int]
    depth_onset: np.ndarray | None = None  # (k, S, S) uint16
    depth_apex: np.ndarray | None = None


class CacheWriter(H5Writer):
    """Streams clips into the file one at a time; it appears at `path` only when the `with` block ends without an
    exception and every one of the `n` clips was added."""

    def __init__(
        self, path: str | Path, n: int, window: int, size: int, classes: list[str], depth: bool, params: dict
    ) -> None:
        super().__init__(path, "cache", expected=n)
        f, rgb, grey = self._file, (n, window, size, size, 3), (n, window, size, size)
        for name in ("onset", "apex"):
            f.create_dataset(name, rgb, np.uint8, chunks=(1, *rgb[1:]))
            if depth:
                f.create_dataset(f"depth_{name}", grey, np.uint16, chunks=(1, *grey[1:]))
            f.create_dataset(f"{name}_position", (n,), np.int32)
            f.create_dataset(f"{name}_frames", (n, window), np.int64)
        f.create_dataset("label", (n,), np.int64)
        f.create_dataset("subject", (n,), STR)
        f.create_dataset("sample_id", (n,), STR)
        f.attrs.update(classes=json.dumps(classes), window=window, size=size, params=json.dumps(params))
        self._depth = depth

    def add(self, clip: ClipWindows) -> None:
        f, i = self._file, self.written
        for name in ("onset", "apex"):
            f[name][i] = getattr(clip, name)
            if self._depth:
                f[f"depth_{name}"][i] = getattr(clip, f"depth_{name}")
            f[f"{name}_position"][i] = getattr(clip, f"{name}_position")
            f[f"{name}_frames"][i] = getattr(clip, f"{name}_frames")
        f["label"][i], f["subject"][i], f["sample_id"][i] = clip.label, clip.subject, clip.sample_id
        self.written += 1


def write_precomputed(
    path: str | Path,
    motion: np.ndarray,
    clips: list[tuple[str, str, int]],
    classes: list[str],
    params: dict,
) -> None:
    """A cache of precomputed inputs: `motion` (n, C, S, S) float32 and (sample_id, subject, label) per clip."""
    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("motion", data=motion.astype(np.float32), chunks=(1, *motion.shape[1:]))
        f.create_dataset("sample_id", data=[c[0] for c in clips], dtype=STR)
        f.create_dataset("subject", data=[c[1] for c in clips], dtype=STR)
        f.create_dataset("label", data=np.array([c[2] for c in clips], np.int64))
        f.attrs.update(classes=json.dumps(classes), window=0, size=motion.shape[-1], params=json.dumps(params))


class Cache:
    """Read access for training: arrays by clip index, subjects for LOSO folds."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with h5py.File(self.path, "r") as f:
            self.classes: list[str] = json.loads(f.attrs["classes"])
            self.window = int(f.attrs["window"])
            self.size = int(f.attrs["size"])
            self.params = json.loads(f.attrs["params"])
            self.labels = f["label"][()]
            self.subjects = np.array([s.decode() for s in f["subject"][()]])
            self.sample_ids = [s.decode() for s in f["sample_id"][()]]
            self.has_frames = "onset" in f
            none = np.full(len(self.labels), -1)  # a cache of precomputed inputs has no frames
            self.onset_position = f["onset_position"][()] if self.has_frames else none
            self.apex_position = f["apex_position"][()] if self.has_frames else none
            self.has_depth = "depth_onset" in f
            self.input_channels = int(f["motion"].shape[1]) if "motion" in f else 0

    def __len__(self) -> int:
        return len(self.labels)

    def fold(self, subject: str) -> tuple[np.ndarray, np.ndarray]:
        """(train indices, test indices) of the LOSO fold that leaves `subject` out."""
        if subject not in set(self.subjects):
            raise KeyError(f"subject {subject!r} not in {self.path} (has {sorted(set(self.subjects))})")
        test = self.subjects == subject
        return np.flatnonzero(~test), np.flatnonzero(test)

    def load(self, name: str, indices: np.ndarray | None = None) -> np.ndarray:
        """One array (`onset`, `apex`, `depth_onset`, ...) for the given clips, read in one pass."""
        with h5py.File(self.path, "r") as f:
            data = f[name]
            if indices is None:
                return data[()]
            return np.stack([data[int(i)] for i in indices]) if len(indices) else data[:0]
