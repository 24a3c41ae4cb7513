"""Where the motion is measured: boxes around dlib's 68 landmarks of the first frame.

Face regions are where the action units of micro-expressions move the skin (brows: AU1, 2, 4; nose wings:
AU9; mouth corners: AU12, 14; lower lip and chin: AU17); the eyes are regions of their own, measured only to
recognise blinks, never to spot. Sizes are in eye distances, so they follow the face's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name -> (landmark indices, padding in eye distances: left/right, above, below)
FACE_REGIONS: dict[str, tuple[list[int], tuple[float, float, float]]] = {
    "right brow": ([18, 19, 20, 21], (0.12, 0.2, 0.0)),  # not the tails (17, 26): they come down to the eyes
    "left brow": ([22, 23, 24, 25], (0.12, 0.2, 0.0)),
    "nose": ([31, 32, 33, 34, 35], (0.12, 0.12, 0.05)),
    "right mouth corner": ([48, 49, 59, 60], (0.15, 0.15, 0.15)),
    "left mouth corner": ([54, 53, 55, 64], (0.15, 0.15, 0.15)),
    "chin": ([57, 58, 56, 8, 7, 9], (0.1, 0.05, 0.0)),
}
EYE_REGIONS: dict[str, tuple[list[int], tuple[float, float, float]]] = {
    "right eye": (list(range(36, 42)), (0.08, 0.1, 0.08)),
    "left eye": (list(range(42, 48)), (0.08, 0.1, 0.08)),
}


@dataclass(frozen=True)
class Regions:
    names: list[str]
    boxes: np.ndarray  # (R, 4) int x0, y0, x1, y1 (x1, y1 exclusive: past the last pixel), face regions first
    faces: int  # how many of them are face regions; the rest are the eyes

    @property
    def eyes(self) -> slice:
        return slice(self.faces, len(self.names))


def eye_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0)))


def face_box(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """x0, y0, x1, y1 of the face with room for head motion: the landmarks' box, 0.4 eye distances wider on each
    side and 0.6 above the brows, clipped to an image of `shape` (height, width)."""
    d = eye_distance(landmarks)
    x0, y0 = landmarks.min(0) - (0.4 * d, 0.6 * d)
    x1, y1 = landmarks.max(0) + (0.4 * d, 0.3 * d)
    return np.array(
        [max(0, int(x0)), max(0, int(y0)), min(shape[1], int(np.ceil(x1))), min(shape[0], int(np.ceil(y1)))]
    )


def regions(landmarks: np.ndarray) -> Regions:
    """The face and eye regions of a face with these landmarks (in the coordinates the motion is measured in)."""
    d = eye_distance(landmarks)
    names, boxes = [], []
    for name, (points, (side, above, below)) in {**FACE_REGIONS, **EYE_REGIONS}.items():
        (x0, y0), (x1, y1) = landmarks[points].min(0), landmarks[points].max(0)
        box = np.floor([x0 - side * d, y0 - above * d, x1 + side * d, y1 + below * d]).astype(int)
        names.append(name)
        boxes.append([box[0], box[1], box[2] + 1, box[3] + 1])
    return Regions(names, np.maximum(np.array(boxes), 0), len(FACE_REGIONS))
