"""Frame decoding with errors that name the file (OpenCV returns None on a bad file)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mer.failures import ClipError


def read_rgb(path: str | Path) -> np.ndarray:
    """An RGB uint8 frame; grey-scale sources (SAMM) are expanded to three channels."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
    if image is None:
        reason = "frame file missing" if not Path(path).is_file() else "unreadable or corrupt image"
        raise ClipError(f"{reason}: {path}")
    return image


def read_depth(path: str | Path) -> np.ndarray:
    """A depth frame as stored (16-bit PNG stays uint16)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        reason = "depth file missing" if not Path(path).is_file() else "unreadable or corrupt depth image"
        raise ClipError(f"{reason}: {path}")
    if image.ndim == 3:
        image = image[..., 0]
    return image
