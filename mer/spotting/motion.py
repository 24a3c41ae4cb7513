"""The face's local motion, from dense optical flow between two frames of the face box.

A region's motion is the mean flow vector inside it minus the median flow of the whole face box (the head's
common motion: drift and shake move every pixel alike, a micro-expression only a small part of the face),
taken as a length in px. Flow is OpenCV's DIS at one of its presets (`dis_ultrafast`, `dis_fast`,
`dis_medium`) or Farneback (`farneback`), in decreasing speed.

`second_difference` is the spotting signal, the optical-flow form of the MEGC baseline of Li et al. (feature
difference between the current frame and the mean of the frames k before and k after): the mean of the flows
from frame i-k to i and from frame i+k to i. A steady drift cancels in it (+vk and -vk), and a movement that
rises and falls within 2k frames peaks at its apex.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from mer.spotting.regions import Regions

DIS_PRESETS = {
    "dis_ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "dis_medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FLOWS = (*DIS_PRESETS, "farneback")
Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]


def make_flow(method: str) -> Flow:
    """(frame a, frame b) -> (h, w, 2) float32 displacement of a's pixels into b.

    The output argument is None, so OpenCV allocates it: an uninitialised array passed there is read as an
    initial flow by DIS and crashed it (segmentation fault) on real frames.
    """
    if method in DIS_PRESETS:
        dis = cv2.DISOpticalFlow.create(DIS_PRESETS[method])
        return lambda a, b: dis.calc(a, b, None)  # type: ignore[call-overload]  # stubs omit the documented None
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]  # as above
    raise ValueError(f"spot.flow: unknown optical flow {method!r}; known: {', '.join(FLOWS)}")


def region_motion(flow: np.ndarray, regions: Regions) -> np.ndarray:
    """(R,) px: each region's mean flow vector less the face box's median flow, as a length."""
    common = np.median(flow.reshape(-1, 2), axis=0)
    means = np.array([flow[y0:y1, x0:x1].reshape(-1, 2).mean(0) for x0, y0, x1, y1 in regions.boxes])
    return np.linalg.norm(means - common, axis=1)


def second_difference(faces: np.ndarray, k: int, regions: Regions, flow: Flow) -> np.ndarray:
    """(N, R) px per frame and region (NaN within k frames of either end, where the measure has no frames)."""
    n = len(faces)
    out = np.full((n, len(regions.names)), np.nan, np.float32)
    for i in range(k, n - k):
        mean = (flow(faces[i - k], faces[i]) + flow(faces[i + k], faces[i])) / 2
        out[i] = region_motion(mean, regions)
    return out


def displacement(faces: np.ndarray, reference: int, frames: range, regions: Regions, flow: Flow) -> np.ndarray:
    """(len(frames), R) px: each region's motion from frame `reference` to each of `frames`."""
    return np.array([region_motion(flow(faces[reference], faces[t]), regions) for t in frames])
