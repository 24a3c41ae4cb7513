"""The spotters on a generated long recording (known truth): events found, blinks not reported, apexes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mer.datasets.long_recordings import read_labels
from mer.face.landmarks import NoFace
from mer.spotting.recording import load
from mer.spotting.regions import EYE_REGIONS, FACE_REGIONS, regions
from mer.spotting.scoring import counts, iou
from mer.spotting.spotter import SpotConfig, apex_in_interval, spot
from tests.conftest import LONG_SMALL


@pytest.fixture(scope="module")
def recording(long_small, dlib_detector):
    root, _ = long_small
    return load(root / "recordings" / "1", dlib_detector, fps=LONG_SMALL.fps)


def test_frame_folder_and_video_read_alike(long_small, recording, dlib_detector):
    root, meta = long_small
    assert recording.numbers.tolist() == list(range(1, meta["recordings"]["1"]["frames"] + 1))
    video = load(root / "videos" / "1.avi", dlib_detector)
    assert video.fps == LONG_SMALL.fps and video.numbers.tolist() == (recording.numbers - 1).tolist()  # from 0
    assert video.faces.shape == recording.faces.shape
    # MJPG re-encodes the frames: close, not equal
    assert np.abs(video.faces.astype(float) - recording.faces).mean() < 3


def test_regions_hold_their_landmarks_and_the_eyes_are_apart(recording):
    roi = regions(recording.landmarks)
    assert roi.names == [*FACE_REGIONS, *EYE_REGIONS] and roi.faces == len(FACE_REGIONS)
    for (points, _), (x0, y0, x1, y1) in zip({**FACE_REGIONS, **EYE_REGIONS}.values(), roi.boxes, strict=True):
        x, y = recording.landmarks[points].T
        assert (x0 <= x).all() and (x < x1).all() and (y0 <= y).all() and (y < y1).all()
    for brow, lid in (("right brow", [37, 38]), ("left brow", [43, 44])):  # the upper lids lie below the brows
        assert roi.boxes[roi.names.index(brow), 3] <= recording.landmarks[lid, 1].min()


def test_spots_every_event_and_no_blink(long_small, recording):
    root, meta = long_small
    truth = read_labels(root / "labels.csv")["1"]
    result = spot(recording, SpotConfig())
    spotted = [(i.onset, i.offset) for i in result.intervals]
    assert counts(spotted, [(e.onset, e.offset) for e in truth]) == {"tp": len(truth), "fp": 0, "fn": 0}
    for blink in meta["recordings"]["1"]["blinks"]:
        assert all(iou(s, (blink["onset"], blink["offset"])) == 0 for s in spotted)
    assert any(reason.startswith("blink") for _, reason in result.rejected)  # seen, and recognised
    by_onset = sorted(result.intervals, key=lambda i: i.onset)
    assert [abs(i.apex - e.apex) for i, e in zip(by_onset, truth, strict=True)] == [0] * len(truth)


def test_without_the_eye_check_blinks_are_reported(recording):
    result = spot(recording, SpotConfig(eye_ratio=np.inf))
    assert len(result.intervals) > LONG_SMALL.events


def test_apex_inside_labelled_intervals(long_small, recording):
    root, _ = long_small
    for event in read_labels(root / "labels.csv")["1"]:
        assert abs(apex_in_interval(recording, event.onset, event.offset) - event.apex) <= 1
    with pytest.raises(ValueError, match=r"no frame 9999 \(frames 1..240\)"):
        apex_in_interval(recording, 1, 9999)


def test_bad_recordings_are_named(tmp_path, dlib_detector):
    with pytest.raises(FileNotFoundError, match="no such frame folder or video file"):
        load(tmp_path / "missing", dlib_detector, fps=30)
    with pytest.raises(ValueError, match="a frame folder has no frame rate"):
        load(tmp_path, dlib_detector)
    with pytest.raises(ValueError, match="no frames"):
        load(tmp_path, dlib_detector, fps=30)
    cv2.imwrite(str(tmp_path / "1.jpg"), np.full((120, 160, 3), 128, np.uint8))
    with pytest.raises(NoFace, match="no face on the first frame"):
        load(tmp_path, dlib_detector, fps=30)
