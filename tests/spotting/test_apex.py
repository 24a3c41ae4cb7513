"""Apex spotting inside the labelled interval on the normalised face (stage apex@<data set>), on a generated
set whose true apexes are known: the rows ingest repaired under `spot` get the spotted apex, the labelled ones
check the method, bad input names the clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import yaml

from mer.datasets import manifest_store
from mer.datasets.ingest import ingest
from mer.datasets.keyframes import Repair
from mer.datasets.protocols import Protocol
from mer.face.align import normalised_landmarks
from mer.face.landmark_store import Template
from mer.face.lwm import LWMTransform
from mer.face.normalised_store import Normalised
from mer.face.normalised_store import write as write_normalised
from mer.face.template import mean_template
from mer.images import read_rgb
from mer.spotting.apex import normalised_faces, spot_apexes

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = Protocol("small", ("happiness", "surprise"), {"happiness": "happiness", "surprise": "surprise"})
APEX_COLUMN = 5  # ApexFrame in the synthetic CASME II coding sheet (1-based, as openpyxl counts)


@pytest.fixture(scope="module")
def spotted_set(synthetic_small, tmp_path_factory):
    """The small set's table with the first row's apex removed ('/') and the second's put after its offset,
    ingested with both apex rules at `spot`; (manifest, true apexes, row ids of the two)."""
    root, meta = synthetic_small
    book = openpyxl.load_workbook(root / "CASME2-coding-synthetic.xlsx")
    sheet = book.active
    sheet.cell(2, APEX_COLUMN).value = "/"
    sheet.cell(3, APEX_COLUMN).value = int(sheet.cell(3, APEX_COLUMN + 1).value) + 2
    folder = tmp_path_factory.mktemp("apex")
    labels = folder / "coding.xlsx"
    book.save(labels)
    result = ingest(
        "casme2",
        root / "CASME2_RAW_selected",
        labels,
        PROTOCOL,
        repair=Repair(apex_missing="spot", apex_outside="spot"),
    )
    manifest_store.write(folder / "manifest.csv", manifest_store.table(result.clips, PROTOCOL))
    manifest = manifest_store.read(folder / "manifest.csv")  # the lists as the stages see them
    repaired = result.report["repaired"]
    return manifest, {s: c["apex"] for s, c in meta["clips"].items()}, repaired


@pytest.fixture(scope="module")
def normalised(spotted_set, dlib_detector):
    """Each clip's first frame registered to the mean template by LWM, as the landmarks and normalise stages do."""
    manifest, _, _ = spotted_set
    points = np.stack([dlib_detector(read_rgb(frames[0])).landmarks for frames in manifest["frames"]])
    template = Template(mean_template(points), "mean", (256, 256))
    transforms = [LWMTransform.fit(template.landmarks, p, 12) for p in points]
    landmarks = np.stack(
        [normalised_landmarks(t, p, template.landmarks) for t, p in zip(transforms, points, strict=True)]
    )
    return Normalised(list(manifest["sample_id"]), transforms, landmarks, template)


def test_ingest_marks_the_rows_left_to_spot(spotted_set):
    manifest, truth, repaired = spotted_set
    (missing,), (outside,) = repaired["apex_missing"], repaired["apex_outside"]
    for sample_id in (missing, outside):
        row = manifest.set_index("sample_id").loc[sample_id]
        assert row.apex == (row.onset + row.offset) // 2  # the middle until the apex stage spots it
    assert len(manifest) == 6


def test_spotted_apexes_replace_the_middle_and_check_the_method(spotted_set, normalised):
    manifest, truth, repaired = spotted_set
    result = spot_apexes(manifest, normalised, ("apex_missing", "apex_outside"), "dis_fast")
    spotted = dict(zip(result.manifest["sample_id"], result.manifest["apex"], strict=True))
    rows = manifest.set_index("sample_id")
    targets = [*repaired["apex_missing"], *repaired["apex_outside"]]
    for sample_id in targets:
        assert abs(spotted[sample_id] - truth[sample_id]) <= 1
        assert rows.at[sample_id, "onset"] <= spotted[sample_id] <= rows.at[sample_id, "offset"]
    others = [s for s in spotted if s not in targets]
    assert all(spotted[s] == rows.at[s, "apex"] for s in others)  # labelled apexes are kept
    assert result.manifest.drop(columns="apex").equals(manifest.drop(columns="apex"))
    m = result.metrics
    assert (m["clips"], m["spotted"], m["labelled"]) == (6, 2, 4)
    assert m["spotted_by_rule"] == {"apex_missing": 1, "apex_outside": 1} and m["spotted_clips"] == sorted(targets)
    middle = [abs((rows.at[s, "onset"] + rows.at[s, "offset"]) // 2 - truth[s]) for s in others]
    assert m["middle_error"]["mean"] == round(float(np.mean(middle)), 4) and m["middle_error"]["max"] == max(middle)
    assert m["apex_error"]["max"] <= 1 and m["apex_error"]["mean"] < m["middle_error"]["mean"]


def test_without_a_spot_rule_only_the_check_runs(spotted_set, normalised):
    manifest, _, _ = spotted_set
    result = spot_apexes(manifest, normalised, (), "dis_fast")
    assert result.manifest.equals(manifest) and result.metrics["spotted"] == 0 and result.metrics["labelled"] == 4


def test_the_normalised_face_puts_the_eyes_where_the_template_has_them(spotted_set, normalised):
    manifest, _, _ = spotted_set
    faces = normalised_faces(manifest["frames"][0][:1], normalised.transforms[0], normalised.template.canvas)
    assert faces.shape == (1, 256, 256) and faces.dtype == np.uint8
    # the eyes are darker than the skin between them: the template's eye centres land on eyes
    eyes = normalised.template.landmarks[36:48].round().astype(int)
    between = normalised.template.landmarks[[27, 28]].round().astype(int)
    assert faces[0][eyes[:, 1], eyes[:, 0]].mean() < faces[0][between[:, 1], between[:, 0]].mean()


def test_bad_input_names_the_clip(spotted_set, normalised):
    manifest, _, _ = spotted_set
    first = manifest["sample_id"][0]
    broken = manifest.copy()
    broken.at[0, "frames"] = [str(Path(f).with_name("gone.jpg")) for f in broken.at[0, "frames"]]
    with pytest.raises(ValueError, match=rf"clip {first} \(.*row \d+\): frame file missing: .*gone.jpg"):
        spot_apexes(broken, normalised, ("apex_missing",), "dis_fast")
    shifted = manifest.copy()
    shifted.at[0, "onset"] = 1
    with pytest.raises(ValueError, match=rf"clip {first} .*onset frame 1 is not among its frames"):
        spot_apexes(shifted, normalised, ("apex_missing",), "dis_fast")
    with pytest.raises(ValueError, match=rf"clip {first} is in the normalised faces but not in the manifest"):
        spot_apexes(manifest.iloc[1:], normalised, ("apex_missing",), "dis_fast")
    with pytest.raises(ValueError, match="not an apex rule"):
        spot_apexes(manifest, normalised, ("offset_invalid",), "dis_fast")


def test_stage_writes_the_manifest_crop_reads_and_the_report(spotted_set, normalised, tmp_path):
    manifest, truth, repaired = spotted_set
    manifest_store.write(tmp_path / "manifest.csv", manifest)
    write_normalised(tmp_path / "normalised.h5", normalised)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"]["apex_repair"] = "spot"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["--manifest", "manifest.csv", "--normalised", "normalised.h5", "--out", "out.csv", "--report", "apex.json"]
    run = subprocess.run(
        [sys.executable, str(ROOT / "stages/apex.py"), *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "apex: 1 of 6 clips given a spotted apex (apex_missing)" in run.stdout  # apex_outside left at middle
    report = json.loads((tmp_path / "apex.json").read_text())
    out = manifest_store.read(tmp_path / "out.csv").set_index("sample_id")
    (missing,) = repaired["apex_missing"]
    assert report["spotted_clips"] == [missing] and abs(out.at[missing, "apex"] - truth[missing]) <= 1
    (outside,) = repaired["apex_outside"]
    assert out.at[outside, "apex"] == manifest.set_index("sample_id").at[outside, "apex"]
