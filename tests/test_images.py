"""Frame I/O: the PNGs crop writes are lossless for RGB and 16-bit depth, in RGB order."""

from __future__ import annotations

import cv2
import numpy as np

from mer.images import encode_png, read_depth, read_rgb


def test_png_round_trip_is_lossless_for_rgb_and_16_bit_depth(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[:, :20] = rgb[:1, :20]  # flat rows as well as noise: both filter paths
    depth = rng.integers(0, 65536, (37, 53), dtype=np.uint16)
    (tmp_path / "rgb.png").write_bytes(encode_png(rgb))
    (tmp_path / "depth.png").write_bytes(encode_png(depth))
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_depth(tmp_path / "depth.png"), depth)
    # channel order: what encode_png calls RGB is what any other PNG reader sees as RGB
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "rgb.png"))[..., ::-1], rgb)
