"""Per clip: compose crop + LWM into one 224x224 sampling map and resample only the frames needed.

Needed frames are the onset window and the apex window: the `k` frames nearest each labelled
frame (offsets -k//2 .. k-1-k//2, shifted inwards at the ends of the clip). Each raw frame is
decoded and resampled once (`cv2.remap`, bilinear; depth nearest-neighbour, 16-bit kept); no
full-size warped frame is ever made.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mer.cache import ClipWindows
from mer.face.align import crop_affine
from mer.face.lwm import LWMTransform, sampling_maps
from mer.failures import ClipError, ClipFailure
from mer.images import encode_png, read_depth, read_rgb
from mer.io import read_json, write_json

if TYPE_CHECKING:
    import pandas as pd

    from mer.face.store import Normalised


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
    out_dir: Path
    size: int
    width: float
    above: float
    below: float
    window: int

    @classmethod
    def from_params(cls, out_dir: Path, p: dict) -> CropSettings:
        """From the `crop` block of params.yaml."""
        return cls(Path(out_dir), p["size"], p["width"], p["above"], p["below"], p["window"])


@dataclass(frozen=True)
class Cropped:
    sample_id: str
    onset_window: list[int]
    apex_window: list[int]
    depth: bool
    uncovered: float  # fraction of crop pixels mapped by the LWM fallback


def frame_file(folder: Path, number: int, depth: bool = False) -> Path:
    """Where crop writes (and cache reads) frame `number` of a clip."""
    return folder / f"{'depth' if depth else 'img'}{number}.png"


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


def read_windows(folder: Path, row, onset_window: list[int], apex_window: list[int], depth: bool) -> ClipWindows:
    """A cropped clip's windows as the cache stores them; `row` is its manifest row."""

    def stack(numbers: list[int], is_depth: bool) -> np.ndarray:
        read = read_depth if is_depth else read_rgb
        return np.stack([read(frame_file(folder, n, is_depth)) for n in numbers])

    return ClipWindows(
        sample_id=row.sample_id,
        subject=row.subject,
        label=int(row.label_index),
        onset=stack(onset_window, False),
        apex=stack(apex_window, False),
        onset_position=onset_window.index(int(row.onset)),
        apex_position=apex_window.index(int(row.apex)),
        onset_frames=onset_window,
        apex_frames=apex_window,
        depth_onset=stack(onset_window, True) if depth else None,
        depth_apex=stack(apex_window, True) if depth else None,
    )


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


def crop_rgb(frame: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """One raw RGB frame resampled to the crop (bilinear, edges replicated)."""
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _crop(task: CropTask, s: CropSettings) -> Cropped:
    map_x, map_y, covered = crop_maps(task.transform, task.landmarks, s)
    onset_window = window(task.frame_numbers, task.onset, s.window)
    apex_window = window(task.frame_numbers, task.apex, s.window)
    folder = s.out_dir / task.sample_id
    folder.mkdir(parents=True, exist_ok=True)

    def crop(frame: str) -> np.ndarray:
        return crop_rgb(read_rgb(frame), map_x, map_y)

    reference = _grey(crop(task.frames[0]))
    for number in sorted(set(onset_window + apex_window)):
        at = task.frame_numbers.index(number)
        rgb = crop(task.frames[at])
        check_frame(rgb, reference, number)
        frame_file(folder, number).write_bytes(encode_png(rgb))
        if task.depth_frames:
            depth = cv2.remap(
                read_depth(task.depth_frames[at]), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE
            )
            frame_file(folder, number, depth=True).write_bytes(encode_png(depth))
    return Cropped(task.sample_id, onset_window, apex_window, bool(task.depth_frames), float(1 - covered.mean()))


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


# data/cropped/index.json, the file `crop` hands to `cache`: the settings the frames were cropped
# with and each clip's windows, so `cache` reads what `crop` did instead of re-deriving it from params.
# Schema: {"settings": {size, width, above, below, window}, "clips": {sample_id: {onset_window,
# apex_window, depth}}}, clips in the order they were cropped.
INDEX = "index.json"


@dataclass(frozen=True)
class IndexedClip:
    onset_window: list[int]
    apex_window: list[int]
    depth: bool


@dataclass(frozen=True)
class CropIndex:
    settings: dict[str, float]
    clips: dict[str, IndexedClip]

    @property
    def size(self) -> int:
        return int(self.settings["size"])

    @property
    def window(self) -> int:
        return int(self.settings["window"])


def write_index(folder: Path, settings: CropSettings, done: list[Cropped]) -> None:
    write_json(
        folder / INDEX,
        {
            "settings": {
                "size": settings.size,
                "width": settings.width,
                "above": settings.above,
                "below": settings.below,
                "window": settings.window,
            },
            "clips": {
                c.sample_id: {"onset_window": c.onset_window, "apex_window": c.apex_window, "depth": c.depth}
                for c in done
            },
        },
    )


def read_index(folder: str | Path) -> CropIndex:
    """The crop stage's index of `folder` (data/cropped)."""
    path = Path(folder) / INDEX
    data = read_json(path)
    if not isinstance(data, dict) or set(data) != {"settings", "clips"}:
        raise ValueError(
            f"{path}: not a crop index (expected keys 'settings' and 'clips'); re-run the crop stage (`dvc repro crop`)"
        )
    clips = {
        sid: IndexedClip(entry["onset_window"], entry["apex_window"], entry["depth"])
        for sid, entry in data["clips"].items()
    }
    return CropIndex(data["settings"], clips)
