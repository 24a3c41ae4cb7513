"""data/crops.h5, the file `crop` hands to `cache`: written clip by clip by `CropsWriter`, read by `Crops`.

The crops go straight from the resampling into HDF5, never through an image codec: a lossless PNG
round trip between two of our own stages cost ~8x the JPEG-decode floor (benchmarks/preprocess.py).
People look at the crops in reports/crop.png, or with `Crops(path).frames(sample_id)`.

Schema (m = the frames of a clip's onset and apex windows together, S = crop size):
- `clips/<sample_id>/numbers`: int64 (m,), the frame numbers, ascending;
- `clips/<sample_id>/rgb`: uint8 (m, S, S, 3), those frames' crops, one chunk per frame, uncompressed;
- `clips/<sample_id>/depth`: uint16 (m, S, S), only for clips with depth (nearest-neighbour crops);
- attrs: `settings` (JSON: size, width, above, below, window) and `clips` (JSON: per sample id in crop
  order, its `onset_window`, `apex_window` and `depth`): the index `cache` reads instead of
  re-deriving windows from params.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from mer.cache_store import ClipWindows
from mer.h5_writer import H5Writer

if TYPE_CHECKING:
    from mer.face.crop import Cropped, CropSettings


@dataclass(frozen=True)
class IndexedClip:
    onset_window: list[int]
    apex_window: list[int]
    depth: bool


class CropsWriter(H5Writer):
    """Streams cropped clips into the file; it appears at `path` only when the `with` block ends without an
    exception (an interrupted or failed stage leaves nothing a rerun would trust)."""

    def __init__(self, path: str | Path, settings: CropSettings) -> None:
        super().__init__(path, "crops")
        self._settings = {k: getattr(settings, k) for k in ("size", "width", "above", "below", "window")}
        self._clips: dict[str, dict] = {}

    def add(self, clip: Cropped) -> None:
        group = self._file.create_group(f"clips/{clip.sample_id}")
        group.create_dataset("numbers", data=np.asarray(clip.numbers, np.int64))
        group.create_dataset("rgb", data=clip.rgb, chunks=(1, *clip.rgb.shape[1:]))
        if clip.depth is not None:
            group.create_dataset("depth", data=clip.depth, chunks=(1, *clip.depth.shape[1:]))
        self._clips[clip.sample_id] = {
            "onset_window": clip.onset_window,
            "apex_window": clip.apex_window,
            "depth": clip.depth is not None,
        }

    def frame(self, sample_id: str, number: int) -> np.ndarray:
        """One written frame's RGB crop (the crop stage's contact sheet reads them back)."""
        group = self._file[f"clips/{sample_id}"]
        return group["rgb"][int(np.searchsorted(group["numbers"][()], number))]

    def _finish(self) -> None:
        self._file.attrs.update(settings=json.dumps(self._settings), clips=json.dumps(self._clips))


class Crops:
    """data/crops.h5 open for reading (a context manager): its index (the crop settings, each clip's windows) at
    once, frames on demand from the one open file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = h5py.File(self.path, "r")
        if "settings" not in self._file.attrs or "clips" not in self._file.attrs:
            self._file.close()
            raise ValueError(
                f"{path}: not a crops file (no 'settings'/'clips' attributes); re-run the crop stage (`dvc repro crop`)"
            )
        self.settings: dict[str, float] = json.loads(self._file.attrs["settings"])
        self.clips = {sid: IndexedClip(**entry) for sid, entry in json.loads(self._file.attrs["clips"]).items()}

    @property
    def size(self) -> int:
        return int(self.settings["size"])

    @property
    def window(self) -> int:
        return int(self.settings["window"])

    def windows(self, row) -> ClipWindows:
        """A cropped clip's windows as the cache stores them; `row` is the clip's manifest row."""
        entry = self.clips[row.sample_id]
        group = self._file[f"clips/{row.sample_id}"]
        numbers = list(group["numbers"][()])

        def stack(window: list[int], name: str) -> np.ndarray:
            return group[name][[numbers.index(n) for n in window]]

        return ClipWindows(
            sample_id=row.sample_id,
            subject=row.subject,
            label=int(row.label_index),
            onset=stack(entry.onset_window, "rgb"),
            apex=stack(entry.apex_window, "rgb"),
            onset_position=entry.onset_window.index(int(row.onset)),
            apex_position=entry.apex_window.index(int(row.apex)),
            onset_frames=entry.onset_window,
            apex_frames=entry.apex_window,
            depth_onset=stack(entry.onset_window, "depth") if entry.depth else None,
            depth_apex=stack(entry.apex_window, "depth") if entry.depth else None,
        )

    def frames(self, sample_id: str) -> dict[int, np.ndarray]:
        """Every cropped RGB frame of one clip by frame number: for a person (or a notebook) to look at."""
        group = self._file[f"clips/{sample_id}"]
        return dict(zip((int(n) for n in group["numbers"][()]), group["rgb"][()], strict=True))

    def __enter__(self) -> Crops:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()
