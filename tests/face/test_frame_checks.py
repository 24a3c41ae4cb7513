"""Every frame of the onset and apex windows is checked: gaps, blank frames, a face that moved."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from mer.face.crop import BLANK_STD, Cropped, CropSettings, CropTask, crop_clip, window
from mer.face.lwm import LWMTransform
from mer.failures import ClipError, ClipFailure

SETTINGS = dict(size=112, width=2.2, above=0.6, below=1.6, window=4)


def test_a_missing_frame_inside_a_window_is_reported_not_joined_over():
    numbers = [74, 75, 76, 77, 78, 79, 81, 82, 83]  # frame 80 deleted
    with pytest.raises(
        ClipError,
        match=r"^gap in window: frame\(s\) \[80\] missing between 77 and 81, the window around frame 79 "
        r"\(a window needs consecutive frames\)$",
    ):
        window(numbers, 79, 4)
    assert window(numbers, 75, 4) == [74, 75, 76, 77]  # a gap outside the window is harmless


@pytest.fixture
def face_clip(tmp_path, dlib_detector):
    """Eight frames 1..8 of the same face; its first-frame landmarks place the crop."""
    face = skimage.data.astronaut()
    marks = dlib_detector(face).landmarks
    frames = []
    for n in range(1, 9):
        path = tmp_path / f"img{n}.png"
        cv2.imwrite(str(path), face[..., ::-1])
        frames.append(str(path))
    return face, marks, frames


def _crop(tmp_path, marks, frames, name="s1/c1"):
    task = CropTask(name, LWMTransform.fit(marks, marks, 12), marks, list(range(1, 9)), frames, None, onset=2, apex=6)
    return crop_clip(task, CropSettings(**SETTINGS))


def test_clean_clip_passes_every_check(tmp_path, face_clip):
    _, marks, frames = face_clip
    assert isinstance(_crop(tmp_path, marks, frames), Cropped)


def test_blank_grey_apex_frame_fails_the_clip(tmp_path, face_clip):
    face, marks, frames = face_clip
    cv2.imwrite(frames[5], np.full_like(face, 127))  # frame 6, the apex
    result = _crop(tmp_path, marks, frames)
    assert isinstance(result, ClipFailure) and result.sample_id == "s1/c1"
    assert (
        result.reason == f"blank frame: frame 6 has grey-level standard deviation 0.00 < {BLANK_STD} "
        "(an empty or constant image in the window)"
    )


def test_near_constant_frame_fails_but_a_dim_face_does_not(tmp_path, face_clip):
    face, marks, frames = face_clip
    rng = np.random.default_rng(0)
    cv2.imwrite(frames[6], (127 + rng.integers(-1, 2, face.shape)).astype(np.uint8))  # frame 7: noise of +-1
    assert _crop(tmp_path, marks, frames).reason.startswith("blank frame: frame 7 has")
    cv2.imwrite(frames[6], (face[..., ::-1] // 4))  # frame 7: a quarter as bright, still the face
    assert isinstance(_crop(tmp_path, marks, frames), Cropped)


def test_face_far_from_the_first_frames_landmarks_fails_the_clip(tmp_path, face_clip):
    face, marks, frames = face_clip
    shift = int(0.25 * (marks[:, 0].max() - marks[:, 0].min()))  # a quarter of the face's width
    moved = np.roll(face, shift, axis=1)
    cv2.imwrite(frames[2], moved[..., ::-1])  # frame 3, in the onset window
    result = _crop(tmp_path, marks, frames)
    assert isinstance(result, ClipFailure) and result.reason.startswith("face moved: frame 3 is")
    small = np.roll(face, 2, axis=1)  # a 2-pixel head motion is what micro-expression clips have
    cv2.imwrite(frames[2], small[..., ::-1])
    assert isinstance(_crop(tmp_path, marks, frames), Cropped)
