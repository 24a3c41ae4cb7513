"""data/landmarks.h5, the file `landmarks` hands to `normalise`: one HDF5 file, written atomically by `write`,
read by `read` (also by mer.predict, for the template a run's folds were trained in).

Datasets, one row per clip that has landmarks: `sample_id` (str), `frame` (str, the file the
landmarks come from), `image_size` (n, 2: width, height), `landmarks` (n, 68, 2 float64,
iBUG 300-W order), `box` (n, 4: x0, y0, x1, y1), `score` (n), `faces` (n: faces found, the
largest kept), `detector` (str: the detector that found the face, `hog` or `cnn` with dlib),
`frame_offset` (n: frames after the clip's reference frame, 0 unless the reference frame had no
face). Group `template`: dataset `landmarks` (68, 2) and attrs `source` (`mean` or
the clip id it was taken from), `canvas` (width, height of the template space); data/normalised.h5
(mer.face.normalised_store) stores the template the same way, with `write_template` and `read_template`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from mer.io import atomic_path

if TYPE_CHECKING:  # type only: reading these files must not import the detectors
    from mer.face.detect import ClipLandmarks

STR = h5py.string_dtype()


@dataclass(frozen=True)
class Template:
    landmarks: np.ndarray
    source: str
    canvas: tuple[int, int]  # width, height


@dataclass(frozen=True)
class LandmarkSet:
    sample_ids: list[str]
    frames: list[str]
    image_sizes: np.ndarray
    landmarks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    faces: np.ndarray
    detectors: list[str]
    frame_offsets: np.ndarray
    template: Template

    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.sample_ids)}


def write(path: str | Path, clips: list[ClipLandmarks], template: Template) -> None:
    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f["sample_id"] = np.array([c.sample_id for c in clips], dtype=object).astype(STR)
        f["frame"] = np.array([c.frame for c in clips], dtype=object).astype(STR)
        f["image_size"] = np.array([c.image_size for c in clips], dtype=np.int32).reshape(-1, 2)
        f["landmarks"] = np.array([c.detection.landmarks for c in clips]).reshape(-1, 68, 2)
        f["box"] = np.array([c.detection.box for c in clips]).reshape(-1, 4)
        f["score"] = np.array([c.detection.score for c in clips], dtype=np.float64)
        f["faces"] = np.array([c.detection.faces for c in clips], dtype=np.int32)
        f["detector"] = np.array([c.detection.detector for c in clips], dtype=object).astype(STR)
        f["frame_offset"] = np.array([c.frame_offset for c in clips], dtype=np.int32)
        write_template(f, template)


def read(path: str | Path) -> LandmarkSet:
    with h5py.File(path, "r") as f:
        template = read_template(f)
        return LandmarkSet(
            sample_ids=[s.decode() for s in f["sample_id"][()]],
            frames=[s.decode() for s in f["frame"][()]],
            image_sizes=f["image_size"][()],
            landmarks=f["landmarks"][()],
            boxes=f["box"][()],
            scores=f["score"][()],
            faces=f["faces"][()],
            detectors=[s.decode() for s in f["detector"][()]],
            frame_offsets=f["frame_offset"][()],
            template=template,
        )


def write_template(f: h5py.File, template: Template) -> None:
    """The `template` group of a landmarks or normalised file."""
    group = f.create_group("template")
    group["landmarks"] = template.landmarks
    group.attrs["source"] = template.source
    group.attrs["canvas"] = np.array(template.canvas, dtype=np.int32)


def read_template(f: h5py.File) -> Template:
    t = f["template"]
    width, height = (int(v) for v in t.attrs["canvas"])
    return Template(t["landmarks"][()], str(t.attrs["source"]), (width, height))
