"""Per clip: compose crop + LWM into one 224x224 sampling map and resample only the frames needed.

Needed frames are the onset window and the apex window: the `k` frames nearest each labelled
frame (offsets -k//2 .. k-1-k//2, shifted inwards at the ends of the clip). Each raw frame is
decoded and resampled once (`cv2.remap`, bilinear; depth nearest-neighbour, 16-bit kept); no
full-size warped frame is ever made. The crops go back to the stage as arrays, which writes them
into data/crops.h5 (mer/face/crop_store.py): no image codec between crop and cache.

Every frame of both windows is checked, where it is cheap (on the 224x224 crop), so a bad frame
fails its clip (reported like any failure) instead of going into training silently:
- a window is consecutive frames: a frame missing inside it (..., 79, 81) fails the clip rather
  than joining frames that are not neighbours (no repair: the right value of a lost frame is unknown);
- a blank or near-constant frame (grey-level standard deviation below BLANK_STD) fails it;
- a face far from the first frame's landmarks fails it: the crop is placed by those landmarks, so
  each window frame's crop is registered to the first frame's crop by phase correlation, and a
  shift above MAX_SHIFT of the crop side (or no clear match, peak response below MIN_RESPONSE)
  means the face is no longer where the crop expects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mer.face.align import crop_affine
from mer.face.lwm import LWMTransform, sampling_maps
from mer.failures import ClipError, ClipFailure
from mer.images import read_depth, read_rgb

if TYPE_CHECKING:
    import pandas as pd

    from mer.face.normalised_store import Normalised


BLANK_STD = 2.0  # grey levels (0-255): below this a frame is blank or near-constant
MAX_SHIFT = 0.10  # fraction of the crop side the face may move from the first frame
MIN_RESPONSE = 0.05  # phase-correlation peak below this: the frame does not show the first frame's face


@dataclass(frozen=True)
class CropTask:
    sample_id: str
    transform: LWMTransform
    landmarks: np.ndarray  # normalised first-frame landmarks (template space)
    frame_numbers: list[int]
    frames: list[str]
    depth_frames: list[str] | None
    onset: int
    apex: int


@dataclass(frozen=True)
class CropSettings:
    size: int
    width: float
    above: float
    below: float
    window: int

    @classmethod
    def from_params(cls, p: dict) -> CropSettings:
        """From the `crop` block of params.yaml."""
        return cls(p["size"], p["width"], p["above"], p["below"], p["window"])


@dataclass(frozen=True)
class Cropped:
    sample_id: str
    onset_window: list[int]
    apex_window: list[int]
    numbers: list[int]  # the frames of both windows, ascending: the rows of rgb and depth
    rgb: np.ndarray  # (m, S, S, 3) uint8
    depth: np.ndarray | None  # (m, S, S) uint16
    uncovered: float  # fraction of crop pixels mapped by the LWM fallback
    folded: float  # fraction of crop pixels where the sampling map folds over (see `folds`)


def crop_tasks(clips: pd.DataFrame, norm: Normalised) -> list[CropTask]:
    """One task per normalised clip; `clips` is the manifest indexed by sample_id."""
    rows: dict[str, Any] = {str(row.sample_id): row for row in clips.itertuples(index=False)}
    return [
        CropTask(
            sid,
            transform,
            landmarks,
            list(rows[sid].frame_numbers),
            list(rows[sid].frames),
            None if rows[sid].depth_frames is None else list(rows[sid].depth_frames),
            int(rows[sid].onset),
            int(rows[sid].apex),
        )
        for sid, transform, landmarks in zip(norm.sample_ids, norm.transforms, norm.landmarks, strict=True)
    ]


def window(numbers: list[int], labelled: int, k: int) -> list[int]:
    """The k frame numbers around `labelled`, as a contiguous run of the clip's frames."""
    if len(numbers) < k:
        raise ClipError(f"too few frames: the clip has {len(numbers)}, a window needs {k}")
    at = numbers.index(labelled)
    start = min(max(at - k // 2, 0), len(numbers) - k)
    run = numbers[start : start + k]
    missing = sorted(set(range(run[0], run[-1] + 1)) - set(run))
    if missing:
        raise ClipError(
            f"gap in window: frame(s) {missing} missing between {run[0]} and {run[-1]}, the window "
            f"around frame {labelled} (a window needs consecutive frames)"
        )
    return run


def crop_clip(task: CropTask, settings: CropSettings) -> Cropped | ClipFailure:
    try:
        return _crop(task, settings)
    except ClipError as exc:
        return ClipFailure(task.sample_id, "crop", str(exc))


def crop_maps(
    transform: LWMTransform, landmarks: np.ndarray, s: CropSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(map_x, map_y, covered): where each crop pixel samples the raw frame, and which pixels the LWM covers.

    `landmarks` are the clip's normalised landmarks; `mer predict` crops a new clip with the same maps.
    """
    grid_to_template = crop_affine(landmarks, s.size, s.width, s.above, s.below)
    covered = np.empty((s.size, s.size), bool)
    map_x, map_y = sampling_maps(transform, grid_to_template, (s.size, s.size), coverage=covered)
    return map_x, map_y, covered


def folds(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """(S, S) bool: the crop pixels where the sampling map folds over, its Jacobian determinant <= 0.

    LWM need not be one-to-one (method.md): where it folds, a patch of the frame shows twice or mirrored
    in the crop (on real faces above the brows and beyond the jaw line, outside the landmarks).
    Derivatives by finite differences on the pixel grid (np.gradient: central inside, one-sided at the
    border).
    """
    dx_dv, dx_du = np.gradient(map_x.astype(np.float64))
    dy_dv, dy_du = np.gradient(map_y.astype(np.float64))
    return np.less_equal(dx_du * dy_dv - dx_dv * dy_du, 0.0)


def crop_rgb(frame: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """One raw RGB frame resampled to the crop (bilinear, edges replicated)."""
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _crop(task: CropTask, s: CropSettings) -> Cropped:
    map_x, map_y, covered = crop_maps(task.transform, task.landmarks, s)
    onset_window = window(task.frame_numbers, task.onset, s.window)
    apex_window = window(task.frame_numbers, task.apex, s.window)

    def crop(frame: str) -> np.ndarray:
        return crop_rgb(read_rgb(frame), map_x, map_y)

    reference = _grey(crop(task.frames[0]))
    numbers = sorted(set(onset_window + apex_window))
    rgb, depth = [], []
    for number in numbers:
        at = task.frame_numbers.index(number)
        rgb.append(crop(task.frames[at]))
        check_frame(rgb[-1], reference, number)
        if task.depth_frames:
            depth.append(
                cv2.remap(
                    read_depth(task.depth_frames[at]), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
                )
            )
    return Cropped(
        task.sample_id,
        onset_window,
        apex_window,
        numbers,
        np.stack(rgb),
        np.stack(depth) if depth else None,
        float(1 - covered.mean()),
        float(folds(map_x, map_y).mean()),
    )


def check_frame(rgb: np.ndarray, reference: np.ndarray, number: int) -> None:
    """Raise ClipError if cropped frame `number` is blank or its face is far from the first frame's."""
    grey = _grey(rgb)
    spread = float(grey.std())
    if spread < BLANK_STD:
        raise ClipError(
            f"blank frame: frame {number} has grey-level standard deviation {spread:.2f} < {BLANK_STD} "
            "(an empty or constant image in the window)"
        )
    window = cv2.createHanningWindow(grey.shape[::-1], cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(reference, grey, window)
    shift = float(np.hypot(dx, dy)) / grey.shape[0]
    if response < MIN_RESPONSE or shift > MAX_SHIFT:
        raise ClipError(
            f"face moved: frame {number} is {shift:.2f} of the crop from the first frame's landmarks "
            f"(limit {MAX_SHIFT}), match {response:.2f} (minimum {MIN_RESPONSE})"
        )


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
