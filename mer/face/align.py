"""From first-frame landmarks to one sampling map per clip: LWM to the template, then the eye crop.

Crop rule (documented in params.yaml `crop`): with d the distance between the eye centres
of the normalised first frame, the box is aligned to the eye line, centred between the eyes,
`width * d` wide, and spans `above * d` above to `below * d` below the eye line; it is
resized to `size` x `size`. The default 2.2 x (0.6 + 1.6) is square, so nothing is squashed
(Oulu's FaceCrop.m uses 1.8d wide and squashes).
"""
from __future__ import annotations

import numpy as np

from mer.face.lwm import LWMTransform
from mer.face.template import eye_centres


def normalised_landmarks(transform: LWMTransform, moving: np.ndarray, start: np.ndarray,
                         iterations: int = 20, step: float = 0.5) -> np.ndarray:
    """Where the clip's landmarks land in template space: solve transform(q) = moving by Newton steps.

    The transform maps template -> clip, so the clip's own points have to be found by inverting
    it; `start` (the template landmarks) is already close since LWM approximates them.
    """
    q = np.array(start, dtype=np.float64)
    for _ in range(iterations):
        residual = moving - transform(q)
        if np.abs(residual).max() < 1e-6:
            break
        jx = (transform(q + [step, 0]) - transform(q - [step, 0])) / (2 * step)
        jy = (transform(q + [0, step]) - transform(q - [0, step])) / (2 * step)
        jacobian = np.stack([jx, jy], axis=2)  # (n, 2 outputs, 2 inputs)
        q = q + np.linalg.solve(jacobian, residual[..., None])[..., 0]
    return q


def crop_affine(landmarks: np.ndarray, size: int, width: float, above: float, below: float) -> np.ndarray:
    """2x3 affine taking output pixel (u, v) of the size x size crop to template coordinates."""
    left, right = eye_centres(landmarks)
    d = np.linalg.norm(right - left)
    if d <= 0:
        raise ValueError("eye centres coincide: cannot place the crop")
    x_axis = (right - left) / d
    y_axis = np.array([-x_axis[1], x_axis[0]])
    top_left = (left + right) / 2 - x_axis * (width * d / 2) - y_axis * (above * d)
    sx, sy = width * d / size, (above + below) * d / size
    # pixel centres: u + 0.5 maps into the box (half-pixel convention of cv2.resize)
    return np.column_stack([x_axis * sx, y_axis * sy, top_left + 0.5 * (x_axis * sx + y_axis * sy)])
