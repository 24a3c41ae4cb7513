"""Region motion and the second-difference signal on flows and frames whose motion is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mer.spotting.motion import make_flow, region_motion, second_difference
from mer.spotting.regions import Regions


def _regions() -> Regions:
    return Regions(["a", "b", "eye"], np.array([[10, 10, 20, 20], [40, 40, 50, 60], [0, 50, 10, 60]]), 2)


def test_common_motion_is_removed_and_a_local_one_measured():
    flow = np.zeros((64, 64, 2), np.float32)
    flow[...] = (1.5, -2.0)  # the whole head moves
    flow[40:60, 40:50] += (3.0, 4.0)  # region b (200 of 4096 pixels) moves 5 px more
    assert region_motion(flow, _regions()) == pytest.approx([0.0, 5.0, 0.0])


def _texture(shape=(64, 64)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 2)


def _shift(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, image.shape[::-1], borderMode=cv2.BORDER_REFLECT101)


def test_a_steady_drift_cancels_and_a_local_bump_peaks_at_its_apex():
    texture = _texture((96, 96))
    regions = Regions(["moving", "still"], np.array([[30, 30, 60, 60], [70, 10, 90, 30]]), 2)
    bump = {10: 0.5, 11: 1.0, 12: 2.0, 13: 1.0, 14: 0.5}  # px of the local movement per frame
    frames = []
    for t in range(25):
        frame = _shift(texture, 0.2 * t, 0.0)  # the head drifts 0.2 px a frame
        moved = _shift(frame, 0.0, bump.get(t, 0.0))
        frame[30:60, 30:60] = moved[30:60, 30:60]
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    signal = second_difference(np.stack(frames), 3, regions, make_flow("farneback"))
    assert np.isnan(signal[:3]).all() and np.isnan(signal[-3:]).all()
    assert int(np.nanargmax(signal[:, 0])) == 12
    assert signal[12, 0] == pytest.approx(2.0, abs=0.5)
    assert np.nanmax(signal[:, 1]) < 0.2  # drift alone
    assert np.nanmax(signal[:6, 0]) < 0.2  # before the movement comes into reach


def test_unknown_flow_is_named():
    with pytest.raises(ValueError, match="unknown optical flow 'tvl1'; known: dis_ultrafast, dis_fast"):
        make_flow("tvl1")
