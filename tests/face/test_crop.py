"""Windows, per-clip cropping (RGB and 16-bit depth), and failures that name the clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from mer.face.crop import Cropped, CropSettings, CropTask, crop_clip, window
from mer.face.detect import check_inside, detect_clip, init_worker
from mer.face.lwm import LWMTransform
from mer.failures import ClipError, ClipFailure, check


def test_window_is_centred_and_shifted_at_the_ends():
    numbers = list(range(10, 20))
    assert window(numbers, 15, 4) == [13, 14, 15, 16]
    assert window(numbers, 10, 4) == [10, 11, 12, 13]
    assert window(numbers, 19, 4) == [16, 17, 18, 19]
    with pytest.raises(ClipError, match="too few frames: the clip has 3, a window needs 4"):
        window([1, 2, 3], 2, 4)


@pytest.fixture
def clip_on_disk(tmp_path, dlib_detector):
    face = skimage.data.astronaut()
    marks = dlib_detector(face).landmarks
    frames, depth = [], []
    rng = np.random.default_rng(0)
    for n in range(1, 9):
        path = tmp_path / f"img{n}.jpg"
        cv2.imwrite(str(path), face[..., ::-1])
        frames.append(str(path))
        d = tmp_path / f"depth{n}.png"
        cv2.imwrite(str(d), rng.choice([1000, 30000, 65000], size=face.shape[:2]).astype(np.uint16))
        depth.append(str(d))
    return marks, frames, depth


def test_crop_clip_returns_windows_rgb_and_depth(clip_on_disk):
    marks, frames, depth = clip_on_disk
    transform = LWMTransform.fit(marks, marks, 12)  # identity: template = this face
    task = CropTask("s1/c1", transform, marks, list(range(1, 9)), frames, depth, onset=2, apex=6)
    result = crop_clip(task, CropSettings(112, 2.2, 0.6, 1.6, 4))
    assert isinstance(result, Cropped)
    assert result.onset_window == [1, 2, 3, 4] and result.apex_window == [4, 5, 6, 7]
    assert result.numbers == [1, 2, 3, 4, 5, 6, 7]  # frame 4 is in both windows, cropped once
    assert result.rgb.shape == (7, 112, 112, 3) and result.rgb.dtype == np.uint8
    assert result.depth is not None and result.depth.shape == (7, 112, 112) and result.depth.dtype == np.uint16
    assert set(np.unique(result.depth)) <= {1000, 30000, 65000}  # nearest-neighbour: no blended depths
    assert result.rgb.std() > 20  # a face, not a flat fill


def test_crop_failure_names_the_clip(tmp_path, clip_on_disk):
    marks, frames, _ = clip_on_disk
    frames[1] = str(tmp_path / "missing.jpg")
    task = CropTask("s1/c2", LWMTransform.fit(marks, marks, 12), marks, list(range(1, 9)), frames, None, 2, 6)
    result = crop_clip(task, CropSettings(64, 2.2, 0.6, 1.6, 4))
    assert isinstance(result, ClipFailure) and result.sample_id == "s1/c2"
    assert "frame file missing" in result.reason and "missing.jpg" in result.reason


def test_detect_clip_reports_corrupt_missing_and_faceless_frames(tmp_path):
    init_worker("dlib", {"upsample": 1})
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 127, np.uint8))
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), skimage.data.astronaut()[..., ::-1])
    results = {
        name: detect_clip((name, [str(path)]))
        for name, path in [("corrupt", corrupt), ("missing", tmp_path / "nope.jpg"), ("blank", blank), ("face", face)]
    }
    assert "unreadable or corrupt image" in results["corrupt"].reason
    assert "frame file missing" in results["missing"].reason
    assert results["blank"].reason.startswith("no face")
    assert results["face"].detection.landmarks.shape == (68, 2)
    with pytest.raises(ClipError, match="clip\\(s\\) failed") as err:
        check([results["corrupt"], results["blank"]], "fail", "landmarks")
    assert "corrupt:" in str(err.value) and "blank:" in str(err.value)
    check([results["corrupt"]], "skip", "landmarks")  # skip: reported by the stage, not raised


def test_landmarks_far_outside_the_image_are_refused():
    points = np.column_stack([np.linspace(10, 90, 68), np.linspace(10, 90, 68)])
    check_inside(points, 100, 100)
    points[:5, 0] = 130
    with pytest.raises(ClipError, match="landmarks outside the image: 5 of 68"):
        check_inside(points, 100, 100)
