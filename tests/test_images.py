"""Frame decoding: RGB order, 16-bit depth kept, grey frames (SAMM) expanded, bad files named."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mer.failures import ClipError
from mer.images import read_depth, read_rgb


def test_rgb_order_16_bit_depth_and_grey_frames(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    depth = rng.integers(0, 65536, (37, 53), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb[..., ::-1])  # OpenCV writes BGR
    cv2.imwrite(str(tmp_path / "depth.png"), depth)
    cv2.imwrite(str(tmp_path / "grey.png"), rgb[..., 0])
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_depth(tmp_path / "depth.png"), depth)
    grey = read_rgb(tmp_path / "grey.png")
    assert grey.shape == (37, 53, 3) and all(np.array_equal(grey[..., c], rgb[..., 0]) for c in range(3))


def test_missing_and_corrupt_frames_are_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with pytest.raises(ClipError, match=r"^frame file missing: .*nope\.jpg$"):
        read_rgb(tmp_path / "nope.jpg")
    with pytest.raises(ClipError, match=r"^unreadable or corrupt image: .*bad\.jpg$"):
        read_rgb(tmp_path / "bad.jpg")
    with pytest.raises(ClipError, match=r"^depth file missing: .*d\.png$"):
        read_depth(tmp_path / "d.png")
