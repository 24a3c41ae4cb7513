"""Synthetic long recordings: layout, truth table, frame count, determinism, where the pixels move."""

from __future__ import annotations

import csv
from dataclasses import replace

import cv2
import numpy as np
import pytest

from mer.datasets.long_recordings import LABEL_COLUMNS, generate, read_labels
from mer.datasets.synthetic import MOVEMENTS
from tests.conftest import LONG_SMALL

STILL = replace(LONG_SMALL, seconds=4.0, events=1, blinks=1, drift=0.0, shake=0.0, video=False, seed=11)


def _grey(root, sub, number):
    return cv2.imread(str(root / "recordings" / str(sub) / f"{number}.jpg"), cv2.IMREAD_GRAYSCALE).astype(np.float32)


def test_layout_truth_table_and_video(long_small):
    root, meta = long_small
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == LABEL_COLUMNS
    assert len(rows) == LONG_SMALL.recordings * LONG_SMALL.events
    length = round(LONG_SMALL.seconds * LONG_SMALL.fps)
    numbers = sorted(int(p.stem) for p in (root / "recordings" / "1").glob("*.jpg"))
    assert numbers == list(range(1, length + 1)) and meta["recordings"]["1"]["frames"] == length
    video = cv2.VideoCapture(str(root / "videos" / "1.avi"))
    assert video.get(cv2.CAP_PROP_FPS) == LONG_SMALL.fps
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == length
    for row in rows:
        assert row["au"] == MOVEMENTS[row["emotion"]][0]


def test_events_and_blinks_are_apart_and_within_their_lengths(long_small):
    _, meta = long_small
    info = meta["recordings"]["1"]
    spans = sorted((e["onset"], e["offset"]) for e in info["events"] + info["blinks"])
    assert len(spans) == LONG_SMALL.events + LONG_SMALL.blinks
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start - end >= round(0.5 * LONG_SMALL.fps)  # a longest event's length of neutral frames
    for e in info["events"]:
        assert e["onset"] < e["apex"] < e["offset"]
        assert 2 <= e["offset"] - e["onset"] <= round(LONG_SMALL.event_seconds[1] * LONG_SMALL.fps)
    for b in info["blinks"]:
        assert round(0.1 * LONG_SMALL.fps) <= b["offset"] - b["onset"] <= round(0.3 * LONG_SMALL.fps)


def test_an_event_moves_the_face_a_blink_moves_only_the_eyes(tmp_path, dlib_detector):
    meta = generate(tmp_path, STILL, dlib_detector)
    info = meta["recordings"]["1"]
    event, blink = info["events"][0], info["blinks"][0]
    points = dlib_detector(cv2.imread(str(tmp_path / "recordings/1/1.jpg"), cv2.IMREAD_COLOR_RGB)).landmarks

    def change(a, b, indices):  # mean |difference| in a 9x9 box around each landmark
        diff = np.abs(_grey(tmp_path, 1, a) - _grey(tmp_path, 1, b))
        return np.mean([diff[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5].mean() for x, y in points[indices]])

    noise = change(1, 2, list(range(68)))
    anchors = [i for i, _ in MOVEMENTS[event["label"]][1]]
    assert change(event["onset"], event["apex"], anchors) > 3 * noise
    lids = [37, 38, 43, 44]
    assert change(blink["onset"], blink["apex"], lids) > 5 * noise
    assert change(blink["onset"], blink["apex"], list(range(48, 68))) < 1.5 * noise  # the mouth stays still


def test_same_seed_same_bytes_other_seed_other_recording(tmp_path, dlib_detector):
    config = replace(STILL, seconds=2.0, events=1, blinks=0)
    generate(tmp_path / "a", config, dlib_detector)
    generate(tmp_path / "b", config, dlib_detector)
    generate(tmp_path / "c", replace(config, seed=12), dlib_detector)
    assert (tmp_path / "a/labels.csv").read_bytes() == (tmp_path / "b/labels.csv").read_bytes()
    assert (tmp_path / "a/recordings/1/30.jpg").read_bytes() == (tmp_path / "b/recordings/1/30.jpg").read_bytes()
    assert (tmp_path / "a/labels.csv").read_bytes() != (tmp_path / "c/labels.csv").read_bytes()


def test_too_many_events_for_the_length_is_refused(tmp_path, dlib_detector):
    with pytest.raises(ValueError, match="do not fit apart in 2.0 s at 30.0 fps"):
        generate(tmp_path, replace(STILL, seconds=2.0, events=3, blinks=2), dlib_detector)
    with pytest.raises(ValueError, match=r"no movement defined for \['fear'\]"):
        generate(tmp_path, replace(STILL, classes=("fear",)), dlib_detector)


def test_read_labels_round_trip_and_errors(long_small, tmp_path):
    root, meta = long_small
    events = read_labels(root / "labels.csv")
    assert [(e.onset, e.apex, e.offset, e.label) for e in events["1"]] == [
        (e["onset"], e["apex"], e["offset"], e["label"]) for e in meta["recordings"]["1"]["events"]
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("sub,count,onset,offset,au,emotion\n1,1,10,20,12,happiness\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['apex'\]"):
        read_labels(bad)
    bad.write_text("sub,count,onset,apex,offset,au,emotion\n1,1,10,25,20,12,happiness\n")
    with pytest.raises(ValueError, match="line 2: needs onset <= apex <= offset, got 10, 25, 20"):
        read_labels(bad)
    bad.write_text("sub,count,onset,apex,offset,au,emotion\n1,1,10,/,20,12,happiness\n")
    with pytest.raises(ValueError, match="line 2: onset, apex and offset must be integers"):
        read_labels(bad)
