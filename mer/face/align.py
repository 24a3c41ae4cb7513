"""From first-frame landmarks to one sampling map per clip: LWM to the template, then the eye crop.

Crop rule (documented in params.yaml `crop`): with d the distance between the eye centres
of the normalised first frame, the box is aligned to the eye line, centred between the eyes,
`width * d` wide, and spans `above * d` above to `below * d` below the eye line; it is
resized to `size` x `size`. The default 2.2 x (0.6 + 1.6) is square, so nothing is squashed
(Oulu's FaceCrop.m uses 1.8d wide and squashes).
"""

from __future__ import annotations

import cv2
import numpy as np

from mer.face.lwm import LWMTransform, sampling_maps
from mer.face.template import eye_centres

PREVIEW_STEP = 2
"""Template pixels per preview pixel: report panels are 176 px wide (2.2 in at 80 dpi), so a
256 px canvas sampled every 2nd pixel shows nearly all they can, for a quarter of the LWM work."""


def normalised_landmarks(
    transform: LWMTransform, moving: np.ndarray, start: np.ndarray, iterations: int = 20, step: float = 0.5
) -> np.ndarray:
    """Where the clip's landmarks land in template space: solve transform(q) = moving by Newton steps.

    The transform maps template -> clip, so the clip's own points have to be found by inverting
    it; `start` (the template landmarks) is already close since LWM approximates them.
    """
    q = np.array(start, dtype=np.float64)
    offsets = np.array([[0.0, 0.0], [step, 0.0], [-step, 0.0], [0.0, step], [0.0, -step]])[:, None, :]
    for _ in range(iterations):
        # the point and its four central-difference neighbours in one evaluation
        value, right, left, down, up = transform((q + offsets).reshape(-1, 2)).reshape(5, *q.shape)
        residual = moving - value
        if np.abs(residual).max() < 1e-6:
            break
        jacobian = np.stack([right - left, down - up], axis=2) / (2 * step)  # (n, 2 outputs, 2 inputs)
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


def preview_warp(transform: LWMTransform, frame: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """`frame` registered onto the template canvas (width, height), every PREVIEW_STEP-th pixel,
    for report figures only (crops use their own full-resolution map)."""
    width, height = canvas
    step = PREVIEW_STEP
    # preview pixel u covers template pixels step*u .. step*u + step - 1: its centre is step*u + (step - 1) / 2
    grid_to_template = np.array([[step, 0.0, (step - 1) / 2], [0.0, step, (step - 1) / 2]])
    map_x, map_y = sampling_maps(transform, grid_to_template, (height // step, width // step))
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
