"""data/normalised.h5, the file `normalise` hands to `crop` and `attention`: one HDF5 file, written atomically
by `write`, read by `read`.

Datasets, one row per clip: `sample_id` (str), `landmarks` (n, 68, 2 float64: the clip's landmarks from
data/landmarks.h5 mapped into template space), `lwm/<key>` (the clip's LWM transform, template -> frame, as
mer.face.lwm.LWMTransform.to_arrays gives it, stacked with the clip as first axis). Group `template`: as in
data/landmarks.h5 (mer.face.landmark_store).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from mer.face.landmark_store import STR, Template, read_template, write_template
from mer.io import atomic_path


@dataclass(frozen=True)
class Normalised:
    """Per clip, its LWM transform (template -> frame) and where its landmarks land in template space."""

    sample_ids: list[str]
    transforms: list  # LWMTransform, one per clip
    landmarks: np.ndarray  # (n, 68, 2) normalised first-frame landmarks
    template: Template

    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.sample_ids)}


def write(path: str | Path, result: Normalised) -> None:
    """Transform arrays are stacked per key (`lwm/<key>`, first axis = clip)."""
    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f["sample_id"] = np.array(result.sample_ids, dtype=object).astype(STR)
        f["landmarks"] = result.landmarks.reshape(-1, 68, 2)
        arrays = [t.to_arrays() for t in result.transforms]
        for key in arrays[0] if arrays else ():
            f[f"lwm/{key}"] = np.stack([np.asarray(a[key]) for a in arrays])
        write_template(f, result.template)


def read(path: str | Path) -> Normalised:
    from mer.face.lwm import LWMTransform

    with h5py.File(path, "r") as f:
        template = read_template(f)
        ids = [s.decode() for s in f["sample_id"][()]]
        stacked = {key: f[f"lwm/{key}"][()] for key in f["lwm"]} if "lwm" in f else {}
        transforms = [LWMTransform.from_arrays({k: v[i] for k, v in stacked.items()}) for i in range(len(ids))]
        return Normalised(ids, transforms, f["landmarks"][()], template)
