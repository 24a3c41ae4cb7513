"""First-frame landmarks of every clip, with failures reported per clip instead of raised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer.face.landmarks import Detection, Detector, NoFace, make_detector
from mer.failures import ClipError, ClipFailure
from mer.images import read_rgb

OUTSIDE_TOLERANCE = 0.05  # fraction of the image size a landmark may stray past the border

_detector: Detector | None = None


@dataclass(frozen=True)
class ClipLandmarks:
    sample_id: str
    frame: str
    image_size: tuple[int, int]  # width, height
    detection: Detection


def init_worker(backend: str, options: dict) -> None:
    """Load the detector once per worker process."""
    global _detector
    _detector = make_detector(backend, **options)


def detect_clip(task: tuple[str, str]) -> ClipLandmarks | ClipFailure:
    """Landmarks of one clip's reference frame (`task` = (sample_id, frame path))."""
    sample_id, frame = task
    try:
        image = read_rgb(frame)
        assert _detector is not None, "init_worker runs first in every worker"
        detection = _detector(image)
        check_inside(detection.landmarks, image.shape[1], image.shape[0])
    except NoFace as exc:
        return ClipFailure(sample_id, "landmarks", f"no face: {exc} in {frame}")
    except ClipError as exc:
        return ClipFailure(sample_id, "landmarks", str(exc))
    return ClipLandmarks(sample_id, frame, (image.shape[1], image.shape[0]), detection)


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
