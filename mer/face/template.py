"""The template face every clip is normalised to: one clip's landmarks, or the mean shape.

`mean` is the generalised-Procrustes mean of all first-frame landmark sets (similarity
alignment, scikit-image), scaled so that the eye centres are `eye_distance` px apart and
placed upright in a square canvas of `canvas` px with the eyes at 40% of its height.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from skimage.transform import SimilarityTransform

from mer.face.landmark_store import Template

if TYPE_CHECKING:  # type only: normalise and crop use this module without the detectors
    from mer.face.detect import ClipLandmarks

RIGHT_EYE = slice(36, 42)  # the subject's right eye: left in the image (iBUG 300-W)
LEFT_EYE = slice(42, 48)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre) of a 68-point set."""
    return landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)


def procrustes_mean(shapes: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Mean shape of (n, 68, 2) landmark sets after removing translation, rotation and scale."""
    if shapes.ndim != 3 or shapes.shape[0] == 0:
        raise ValueError(f"need at least one (68, 2) landmark set, got array of shape {shapes.shape}")
    mean = _normalise(shapes[0])
    for _ in range(iterations):
        aligned = np.stack([_align(s, mean) for s in shapes])
        new_mean = _normalise(aligned.mean(axis=0))
        if np.abs(new_mean - mean).max() < 1e-10:
            break
        mean = new_mean
    return mean


def place(shape: np.ndarray, canvas: int, eye_distance: float) -> np.ndarray:
    """Rotate the eye line level, scale to `eye_distance`, put the eyes at (canvas/2, 0.4 canvas)."""
    left, right = eye_centres(shape)
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    scale = eye_distance / np.linalg.norm(right - left)
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    rotation = np.array([[c, -s], [s, c]])
    placed = (shape - (left + right) / 2) @ rotation.T
    return placed + np.array([canvas / 2, 0.4 * canvas])


def mean_template(shapes: np.ndarray, canvas: int = 256, eye_distance: float = 80.0) -> np.ndarray:
    """The `mean` template: Procrustes mean of `shapes` placed upright in the canvas."""
    return place(procrustes_mean(shapes), canvas, eye_distance)


def choose_template(found: list[ClipLandmarks], choice: str, canvas: int, eye_distance: float) -> Template:
    """`mean` of all clips' landmarks, or the landmarks of the clip named `choice` in its own frame."""
    if not found:
        raise ValueError("landmarks: no clip has landmarks, cannot build a template")
    if choice == "mean":
        shapes = np.stack([c.detection.landmarks for c in found])
        return Template(mean_template(shapes, canvas, eye_distance), "mean", (canvas, canvas))
    by_id = {c.sample_id: c for c in found}
    if choice not in by_id:
        raise ValueError(
            f"landmarks.template: {choice!r} is neither 'mean' nor a clip with landmarks "
            f"(e.g. {', '.join(list(by_id)[:3])})"
        )
    clip = by_id[choice]
    return Template(clip.detection.landmarks, choice, clip.image_size)


def _normalise(shape: np.ndarray) -> np.ndarray:
    centred = shape - shape.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=1).mean())


def _align(shape: np.ndarray, target: np.ndarray) -> np.ndarray:
    transform = SimilarityTransform.from_estimate(shape, target)
    if not transform:
        raise ValueError("degenerate landmark set: cannot align it to the mean shape")
    return transform(shape)
