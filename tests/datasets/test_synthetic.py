"""The embedded synthetic set: CASME II layout, reader round trip, determinism, local motion."""

from __future__ import annotations

import time

import cv2
import numpy as np
from openpyxl import load_workbook

from mer.datasets import casme2
from mer.datasets.ingest import ingest
from mer.datasets.protocols import Protocol
from mer.datasets.synthetic import HEADER, MOVEMENTS, SyntheticConfig, generate
from tests.conftest import SMALL


def _frame(root, sample_id, number):
    path = root / "CASME2_RAW_selected" / sample_id / f"img{number}.jpg"
    return cv2.imread(str(path), cv2.IMREAD_COLOR_RGB).astype(np.float32)


def test_layout_and_header_match_casme2(synthetic_small):
    root, meta = synthetic_small
    sheet = load_workbook(root / "CASME2-coding-synthetic.xlsx").active
    header = [c.value for c in sheet[1]]
    assert header == HEADER and header[2] is None and header[6] is None
    assert sheet.max_row == 1 + SMALL.subjects * len(SMALL.classes) * SMALL.clips_per_class
    for sample_id, info in meta["clips"].items():
        folder = root / "CASME2_RAW_selected" / sample_id
        numbers = sorted(int(p.stem[3:]) for p in folder.glob("img*.jpg"))
        assert numbers == list(range(info["first_frame"], info["last_frame"] + 1))
        assert info["first_frame"] < info["onset"] < info["apex"] < info["offset"] <= info["last_frame"]


def test_round_trip_through_the_casme2_reader(synthetic_small):
    root, meta = synthetic_small
    result = casme2.read(root / "CASME2_RAW_selected", root / "CASME2-coding-synthetic.xlsx", margin=100)
    assert result.rejected == []
    by_id = {c.sample_id: c for c in result.clips}
    assert set(by_id) == set(meta["clips"])
    for sample_id, info in meta["clips"].items():
        clip = by_id[sample_id]
        assert (clip.onset, clip.apex, clip.offset, clip.emotion) == (
            info["onset"],
            info["apex"],
            info["offset"],
            info["label"],
        )
        assert clip.frame_numbers[0] == info["first_frame"] and clip.frame_numbers[-1] == info["last_frame"]
    protocol = Protocol("p", SMALL.classes, {c: c for c in SMALL.classes})
    report = ingest(
        "casme2",
        root / "CASME2_RAW_selected",
        root / "CASME2-coding-synthetic.xlsx",
        protocol,
        expected_subjects=["sub01", "sub02", "sub03"],
    ).report
    assert report["per_class"] == {"happiness": 3, "surprise": 3}


def test_same_seed_same_bytes_other_seed_differs(tmp_path, dlib_detector):
    config = SyntheticConfig(subjects=1, classes=("happiness",), clips_per_class=1, frames=(12, 12), seed=3)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    meta_a = generate(a, config, dlib_detector)
    time.sleep(1.1)  # a timestamp stored in any file would now differ
    generate(b, config, dlib_detector)
    generate(c, SyntheticConfig(**{**config.__dict__, "seed": 4}), dlib_detector)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(f.suffix == ".xlsx" for f in files) and any(f.suffix == ".jpg" for f in files)
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    (sample_id,) = meta_a["clips"]
    frames_c = sorted((c / "CASME2_RAW_selected").rglob("*.jpg"))
    assert (a / files[0]).read_bytes() != frames_c[0].read_bytes()


def test_motion_is_local_to_the_class_anchors(synthetic_small, dlib_detector):
    """|apex - onset| is much larger near the moving landmarks than on the rest of the face."""
    root, meta = synthetic_small
    for sample_id, info in meta["clips"].items():
        onset = _frame(root, sample_id, info["onset"])
        apex = _frame(root, sample_id, info["apex"])
        marks = dlib_detector(onset.astype(np.uint8)).landmarks
        eye_distance = np.linalg.norm(marks[36:42].mean(0) - marks[42:48].mean(0))
        ys, xs = np.mgrid[0 : onset.shape[0], 0 : onset.shape[1]]
        anchors = np.array([marks[i] for i, _ in MOVEMENTS[info["label"]][1]])
        near = np.zeros(onset.shape[:2], bool)
        for x, y in anchors:
            near |= (xs - x) ** 2 + (ys - y) ** 2 < (0.3 * eye_distance) ** 2
        face = (xs > marks[:, 0].min()) & (xs < marks[:, 0].max()) & (ys > marks[:, 1].min()) & (ys < marks[:, 1].max())
        moving = np.abs(apex - onset).mean(axis=2)
        still = _still_frame_difference(root, sample_id, info)
        assert moving[near].mean() > 1.5 * moving[face & ~near].mean(), sample_id
        assert moving[near].mean() > 1.5 * still[near].mean(), sample_id


def _still_frame_difference(root, sample_id, info):
    """Difference between two neutral frames before the onset: jitter and noise only."""
    a = _frame(root, sample_id, info["first_frame"])
    b = _frame(root, sample_id, info["first_frame"] + 1)
    return np.abs(b - a).mean(axis=2)


def test_unknown_class_is_refused(tmp_path, dlib_detector):
    import pytest

    with pytest.raises(ValueError, match="no movement defined for \\['fear'\\]"):
        generate(tmp_path, SyntheticConfig(classes=("fear",)), dlib_detector)
