"""First-frame landmarks of every clip, with failures reported per clip instead of raised.

Where the detector finds no face on a clip's reference frame, the next frames of the clip are
tried (same person, same place, a few ms later) before the clip fails; the failure names every
frame and detector tried.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer.face.landmarks import FALLBACK_DETECTORS, Detection, Detector, NoFace, make_detector
from mer.failures import ClipError, ClipFailure
from mer.images import read_rgb

OUTSIDE_TOLERANCE = 0.05  # fraction of the image size a landmark may stray past the border

_detector: Detector | None = None


@dataclass(frozen=True)
class ClipLandmarks:
    sample_id: str
    frame: str  # the frame the landmarks come from
    image_size: tuple[int, int]  # width, height
    detection: Detection
    frame_offset: int  # frames after the reference frame (0: the reference frame itself)


def init_worker(backend: str, options: dict) -> None:
    """Load the detector(s) once per worker process."""
    global _detector
    _detector = make_detector(backend, **options)


def detect_clip(task: tuple[str, list[str]]) -> ClipLandmarks | ClipFailure:
    """Landmarks of one clip (`task` = (sample_id, [reference frame, next frames...])): of the first
    of those frames in which the detector finds a face."""
    sample_id, frames = task
    assert _detector is not None, "init_worker runs first in every worker"
    missed: NoFace | None = None
    try:
        for offset, frame in enumerate(frames):
            image = read_rgb(frame)
            try:
                detection = _detector(image)
            except NoFace as exc:
                missed = exc
                continue
            check_inside(detection.landmarks, image.shape[1], image.shape[0])
            return ClipLandmarks(sample_id, frame, (image.shape[1], image.shape[0]), detection, offset)
    except ClipError as exc:
        return ClipFailure(sample_id, "landmarks", str(exc))
    return ClipFailure(sample_id, "landmarks", f"no face: {missed} in {_listing(frames)}")


REFERENCE_FRAMES = ("first", "onset")  # landmarks.frame


def reference_frame(kept: Sequence[int], onset: int, which: str) -> int:
    """The number of the frame whose landmarks define a clip's transform: `first`, the first frame ingest kept
    (`kept`: the clip's frame numbers as ingest keeps them), or `onset`. The landmarks stage and `mer predict`
    both ask it, so a new clip is normalised as the training clips were."""
    if which not in REFERENCE_FRAMES:
        raise ValueError(f"landmarks.frame must be one of {REFERENCE_FRAMES}, got {which!r}")
    return kept[0] if which == "first" else onset


def frames_to_try(frames: list[str], reference: int, next_frames: int) -> list[str]:
    """The reference frame (index `reference` into the clip's frames) and up to `next_frames` after it."""
    return list(frames[reference : reference + 1 + next_frames])


def found_by(found: list[ClipLandmarks]) -> dict:
    """For the stage's report: clips per detector, and the clips each fallback found (the fallback
    detector, a later frame)."""
    return {
        "found_by_detector": dict(sorted(Counter(c.detection.detector for c in found).items())),
        "fallbacks": {
            **{name: [c.sample_id for c in found if c.detection.detector == name] for name in FALLBACK_DETECTORS},
            "later_frame": {c.sample_id: c.frame_offset for c in found if c.frame_offset},
        },
    }


def sheet_clips(found: list[ClipLandmarks], count: int) -> list[ClipLandmarks]:
    """The clips the contact sheet shows: those a fallback found first (the ones worth a look), then a
    spread over the rest, `count` in all, in the stage's order."""
    fallback = [i for i, c in enumerate(found) if c.detection.detector in FALLBACK_DETECTORS or c.frame_offset]
    chosen = set(fallback[:count])
    rest = [i for i in range(len(found)) if i not in chosen]
    spare = min(count - len(chosen), len(rest))
    chosen |= {rest[int(j)] for j in np.linspace(0, len(rest) - 1, spare).round()} if spare > 0 else set()
    return [found[i] for i in sorted(chosen)]


def _listing(frames: list[str]) -> str:
    """`folder/a.jpg`, or `any of the 3 frames folder/{a.jpg, b.jpg, c.jpg}` (a clip's frames share a folder)."""
    if len(frames) == 1:
        return frames[0]
    folders = {str(Path(f).parent) for f in frames}
    names = ", ".join(Path(f).name for f in frames)
    listed = f"{folders.pop()}/{{{names}}}" if len(folders) == 1 else ", ".join(frames)
    return f"any of the {len(frames)} frames {listed}"


def check_inside(points: np.ndarray, width: int, height: int) -> None:
    """Refuse landmark sets that stray far off the image (a false detection, or a cut-off face)."""
    tol_x, tol_y = OUTSIDE_TOLERANCE * width, OUTSIDE_TOLERANCE * height
    outside = (
        (points[:, 0] < -tol_x)
        | (points[:, 0] > width - 1 + tol_x)
        | (points[:, 1] < -tol_y)
        | (points[:, 1] > height - 1 + tol_y)
    )
    if outside.any():
        raise ClipError(
            f"landmarks outside the image: {int(outside.sum())} of 68 points beyond "
            f"{OUTSIDE_TOLERANCE:.0%} of the {width}x{height} frame"
        )
