"""Windows, per-clip cropping (RGB and 16-bit depth), and failures that name the clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from mer.face.crop import Cropped, CropSettings, CropTask, crop_clip, folds, window
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
    assert result.uncovered == 0.0 and result.folded == 0.0  # an identity LWM neither folds nor leaves the circles


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


def test_folds_are_where_the_map_turns_back():
    v, u = np.mgrid[0:100, 0:100].astype(np.float32)
    # x runs with u up to column 70, then back: columns 70 (derivative 0) to 99 fold, 30% of the pixels
    folded = folds(np.where(u <= 70, u, 140 - u), v)
    assert folded.mean() == pytest.approx(0.30)
    assert not folded[:, :70].any() and folded[:, 70:].all()
    # a fold in the middle of a smooth map: x = u + 8 sin(u / 4) turns back where cos(u / 4) < -1/2
    wavy = folds(u + 8 * np.sin(u / 4), v)
    assert wavy.mean() == pytest.approx(np.mean(np.cos(np.arange(100) / 4) < -0.5), abs=0.03)


def test_an_affine_map_has_no_fold_unless_it_mirrors():
    v, u = np.mgrid[0:64, 0:64].astype(np.float32)
    # rotation, anisotropic scale and shear: a positive determinant everywhere
    a = np.array([[1.7, -0.6, 40.0], [0.9, 1.2, -15.0]])
    assert not folds(a[0, 0] * u + a[0, 1] * v + a[0, 2], a[1, 0] * u + a[1, 1] * v + a[1, 2]).any()
    assert folds(-u + 100, v).all()  # a mirror turns the whole crop over


def test_the_crop_report_lists_each_clips_folds_and_the_worst():
    from stages.crop import warp_summary

    def clip(sample_id: str, uncovered: float, folded: float) -> Cropped:
        return Cropped(sample_id, [1], [2], [1, 2], np.zeros((0, 8, 8, 3), np.uint8), None, uncovered, folded)

    summary = warp_summary([clip("a", 0.0, 0.0), clip("b", 0.1, 0.02), clip("c", 0.0, 0.05)])
    assert summary["uncovered_fraction"] == {"mean": pytest.approx(0.1 / 3), "max": 0.1}
    assert summary["folded_fraction"] == {
        "mean": pytest.approx(0.07 / 3),
        "max": 0.05,
        "clips_with_folds": 2,
        "worst": [{"sample_id": "c", "folded_fraction": 0.05}, {"sample_id": "b", "folded_fraction": 0.02}],
    }
    assert summary["per_clip"]["b"] == {"uncovered_fraction": 0.1, "folded_fraction": 0.02}
