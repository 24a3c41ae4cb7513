"""The detector cascade: HOG, then dlib's CNN where HOG finds no face, then the clip's next frames.

Faces HOG misses are made from the photos shipped in installed packages (no photo is committed), as
HTNet's real 224x224 crops are: cut inside the face (cheeks, chin or forehead partly off the image).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from mer.datasets import manifest_store
from mer.datasets.synthetic import face_photos
from mer.face import landmark_store
from mer.face.detect import ClipLandmarks, detect_clip, found_by, init_worker, reference_frame, sheet_clips
from mer.face.landmarks import DlibDetector, NoFace
from mer.face.template import choose_template, eye_centres

ROOT = Path(__file__).resolve().parents[2]


def tight_face(
    photo: np.ndarray, truth: np.ndarray, side: float, chin: float, above: float
) -> tuple[np.ndarray, np.ndarray]:
    """(image, its true landmarks): `photo` cut to its landmarks' extent, `side` of its width inside it at
    both sides, `chin` of its height above the chin and `above` of it above the brows; resized to 224 x 224."""
    (x0, y0), (x1, y1) = truth.min(axis=0), truth.max(axis=0)
    w, h = x1 - x0, y1 - y0
    left, top, right, bottom = int(x0 + side * w), int(y0 - above * h), int(x1 - side * w), int(y1 - chin * h)
    crop = cv2.resize(np.ascontiguousarray(photo[top:bottom, left:right]), (224, 224), interpolation=cv2.INTER_AREA)
    return crop, (truth - [left, top]) * [224 / (right - left), 224 / (bottom - top)]


@pytest.fixture(scope="module")
def missed_by_hog(dlib_detector) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image, true landmarks) of faces HOG misses, cut tight as HTNet's crops (truth: the 68 points
    of the whole photo, mapped into the crop)."""
    photos = dict(face_photos())
    cases = [("matplotlib grace_hopper.jpg", 0.1, 0.0, 0.0), ("skimage.data.astronaut", 0.1, 0.1, 0.1)]
    made = []
    for name, side, chin, above in cases:
        photo = photos[name]
        image, truth = tight_face(photo, dlib_detector(photo).landmarks, side, chin, above)
        made.append((name, image, truth))
    return made


@pytest.fixture(scope="module")
def cascade() -> DlibDetector:
    return DlibDetector(upsample=0, cnn=True)


def test_cascade_finds_what_hog_misses_and_says_so(missed_by_hog, cascade):
    hog = DlibDetector(upsample=0)
    for name, image, truth in missed_by_hog:
        with pytest.raises(NoFace, match=r"dlib HOG \(upsample 0\) found no face"):
            hog(image)
        found = cascade(image)
        assert found.detector == "cnn", name
        left, right = eye_centres(truth)
        eyes = np.linalg.norm(right - left)
        error = np.linalg.norm(found.landmarks - truth, axis=1)
        # the same shape predictor from the CNN's box: within a tenth of the eye distance of the whole
        # photo's points on average, the eyes (the crop's anchors) within 7%
        assert error.mean() < 0.10 * eyes, (name, error.mean() / eyes)
        assert np.linalg.norm(np.subtract(eye_centres(found.landmarks), (left, right)), axis=1).max() < 0.07 * eyes


def test_hog_first_where_it_finds_the_face(dlib_detector, cascade):
    photo = dict(face_photos())["skimage.data.astronaut"]
    found = cascade(photo)
    assert found.detector == "hog"
    np.testing.assert_array_equal(found.landmarks, DlibDetector(upsample=0)(photo).landmarks)


def _write(path: Path, image: np.ndarray) -> str:
    cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))
    return str(path)


@pytest.fixture
def frames(tmp_path, missed_by_hog) -> dict[str, str]:
    """Frame files: blank ones, and a face only the CNN finds."""
    blank = np.full((224, 224, 3), 120, np.uint8)
    paths = {f"blank{i}": _write(tmp_path / f"img{i}.jpg", blank) for i in range(1, 5)}
    paths["cnn face"] = _write(tmp_path / "face.png", missed_by_hog[0][1])
    return paths


def test_detect_clip_records_the_detector_and_a_later_frame(frames, tmp_path):
    init_worker("dlib", {"upsample": 0, "cnn": True})
    found = detect_clip(("s1/c1", [frames["cnn face"]]))
    assert isinstance(found, ClipLandmarks) and found.detection.detector == "cnn" and found.frame_offset == 0
    later = detect_clip(("s1/c2", [frames["blank1"], frames["blank2"], frames["cnn face"]]))
    assert isinstance(later, ClipLandmarks)
    assert later.frame == frames["cnn face"] and later.frame_offset == 2 and later.detection.detector == "cnn"
    clips = [found, later]
    assert found_by(clips) == {
        "found_by_detector": {"cnn": 2},
        "fallbacks": {"cnn": ["s1/c1", "s1/c2"], "later_frame": {"s1/c2": 2}},
    }
    path = tmp_path / "landmarks.h5"
    landmark_store.write(path, clips, choose_template(clips, "mean", 256, 80))
    back = landmark_store.read(path)
    assert back.detectors == ["cnn", "cnn"] and back.frame_offsets.tolist() == [0, 2]


def test_no_face_in_any_frame_names_every_frame_and_detector(frames):
    init_worker("dlib", {"upsample": 0, "cnn": True})
    tried = [frames[f"blank{i}"] for i in range(1, 5)]
    failure = detect_clip(("s1/c3", tried))
    folder = str(Path(tried[0]).parent)
    assert failure.reason == (
        "no face: dlib HOG (upsample 0) and dlib CNN (MMOD, upsample 0) found no face in any of the 4 frames "
        f"{folder}/{{img1.jpg, img2.jpg, img3.jpg, img4.jpg}}"
    )


def test_the_sheet_shows_the_fallback_clips_first():
    class Found:
        def __init__(self, i: int, detector: str = "hog", offset: int = 0) -> None:
            self.sample_id, self.frame_offset = f"c{i}", offset
            self.detection = type("D", (), {"detector": detector})()

    clips = [Found(i) for i in range(10)]
    assert [c.sample_id for c in sheet_clips(clips, 4)] == ["c0", "c3", "c6", "c9"]  # a spread, as before
    clips[5], clips[7] = Found(5, "cnn"), Found(7, offset=1)
    assert [c.sample_id for c in sheet_clips(clips, 4)] == ["c0", "c5", "c7", "c9"]


def test_stage_skips_a_faceless_clip_and_reports_what_found_each(tmp_path, frames):
    """stages/landmarks.py with preprocess.on_error: skip: the faceless clip is listed with every frame
    and detector tried; the report counts the clips per detector and names the fallbacks' clips."""
    face = cv2.imread(frames["cnn face"])
    numbered = []
    for n in range(1, 5):  # clip 2: frame 1 blank, frames 2-4 the face
        numbered.append(frames["blank1"] if n == 1 else _write(tmp_path / f"c2_{n}.jpg", face[..., ::-1]))
    rows = [
        _row("s1/faceless", [frames[f"blank{i}"] for i in range(1, 5)]),
        _row("s1/second_frame", numbered),
    ]
    manifest_store.write(tmp_path / "manifest.csv", pd.DataFrame(rows, columns=manifest_store.COLUMNS))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["preprocess"].update(on_error="skip", workers=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = {name: tmp_path / name for name in ("landmarks.h5", "landmarks.json", "landmarks.png")}
    subprocess.run(
        [sys.executable, str(ROOT / "stages/landmarks.py"), "--params", str(tmp_path / "params.yaml")]
        + ["--manifest", str(tmp_path / "manifest.csv"), "--out", str(out["landmarks.h5"])]
        + ["--report", str(out["landmarks.json"]), "--sheet", str(out["landmarks.png"])],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    report = json.loads(out["landmarks.json"].read_text())
    assert report["detected"] == 1 and report["failed"] == 1
    assert report["found_by_detector"] == {"cnn": 1}
    assert report["fallbacks"] == {"cnn": ["s1/second_frame"], "later_frame": {"s1/second_frame": 1}}
    (failure,) = report["failures"]
    assert failure["sample_id"] == "s1/faceless" and "dlib HOG (upsample 0) and dlib CNN" in failure["reason"]
    assert "{img1.jpg, img2.jpg, img3.jpg, img4.jpg}" in failure["reason"]
    assert landmark_store.read(out["landmarks.h5"]).frames == [numbered[1]]


def _row(sample_id: str, frames: list[str]) -> dict:
    subject, clip = sample_id.split("/")
    numbers = ";".join(str(n) for n in range(1, len(frames) + 1))
    return {
        **dict.fromkeys(manifest_store.COLUMNS, ""),
        **{"sample_id": sample_id, "subject": subject, "clip": clip, "label": "happiness", "label_index": 0},
        **{"emotion": "happiness", "onset": 1, "apex": 2, "offset": 3, "apex_repaired": False, "source": "test"},
        **{"frame_numbers": numbers, "frames": ";".join(frames)},
    }


def test_reference_frame_is_the_first_kept_or_the_onset():
    kept = [3, 4, 5, 6, 7]  # ingest kept frames from onset - margin: 5 - 2
    assert reference_frame(kept, 5, "first") == 3
    assert reference_frame(kept, 5, "onset") == 5
    with pytest.raises(ValueError, match=r"landmarks.frame must be one of \('first', 'onset'\), got 'apex'"):
        reference_frame(kept, 5, "apex")
