from pathlib import Path

import pytest
import yaml

from mer.datasets.ingest import ingest, natural_key
from mer.datasets.keyframes import Repair
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from tests.datasets import fixtures

CASME2_5 = Protocol(
    "casme2_5class",
    ("happiness", "disgust", "repression", "surprise", "others"),
    {e: e for e in ("happiness", "disgust", "repression", "surprise", "others")},
)
SAMM_5 = Protocol(
    "samm_5class",
    ("happiness", "anger", "contempt", "surprise", "other"),
    {e: e for e in ("happiness", "anger", "contempt", "surprise", "other")},
)
MMEW_4 = Protocol(
    "mmew_4class",
    ("happiness", "surprise", "disgust", "others"),
    {e: e for e in ("happiness", "surprise", "disgust", "others")},
)
CASME3_4 = Protocol(
    "casme3_4class",
    ("positive", "negative", "surprise", "others"),
    {
        "happy": "positive",
        "disgust": "negative",
        "fear": "negative",
        "anger": "negative",
        "sad": "negative",
        "surprise": "surprise",
        "others": "others",
    },
)
GENERIC_2 = Protocol("generic_2class", ("positive", "negative"), {"happy": "positive", "sad": "negative"})


def test_fail_lists_every_rejected_row(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"offset_before_onset", "escaping_filename"})
    with pytest.raises(IngestError) as err:
        ingest("casme2", layout.root, layout.labels, CASME2_5, on_error="fail", repair=Repair(offset_invalid="reject"))
    message = str(err.value)
    assert message.startswith("2 label row(s) rejected")
    assert f"{layout.labels}:row 7 (sub01/bad_offset): offset frame 0 is before onset frame 50" in message
    assert f"{layout.labels}:row 8 (sub01/../x): path 'sub01/../x' escapes the data root" in message


def test_skip_reports_rejections_and_protocol_drops(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"offset_before_onset", "duplicate", "apex_missing"})
    result = ingest(
        "casme2", layout.root, layout.labels, CASME2_5, on_error="skip", repair=Repair(offset_invalid="reject")
    )
    report = result.report
    assert [c.sample_id for c in result.clips] == ["sub01/EP02_01f", "sub01/EP03_02", "sub02/EP01_11f", "sub10/EP07_01"]
    assert report["dropped_by_protocol"] == {"fear": 1}
    assert report["per_class"] == {"happiness": 1, "disgust": 1, "repression": 1, "surprise": 1, "others": 0}
    assert report["apex_repaired"] == 1
    assert report["rejected_count"] == 2
    assert report["rejected"] == [
        {
            "source": f"{layout.labels}:row {layout.rows['offset_before_onset']}",
            "sample_id": "sub01/bad_offset",
            "reason": "offset frame 0 is before onset frame 50",
        },
        {
            "source": f"{layout.labels}:row {layout.rows['duplicate']}",
            "sample_id": "sub01/EP02_01f",
            "reason": f"duplicate clip id, first seen at {layout.labels}:row 2",
        },
    ]


def test_subject_whose_rows_all_fail_is_reported(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"subject_without_clip"})
    report = ingest("casme2", layout.root, layout.labels, CASME2_5, on_error="skip").report
    assert report["subjects"] == ["sub01", "sub02", "sub10"]
    assert {
        "source": "subject sub07",
        "sample_id": "sub07",
        "reason": "subject has no usable clip (all its rows were rejected)",
    } in report["rejected"]
    with pytest.raises(IngestError, match="subject sub07 .*subject has no usable clip"):
        ingest("casme2", layout.root, layout.labels, CASME2_5, on_error="fail")


def test_subject_with_only_other_classes_leaves_the_list_without_failing(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path, {"notes_block"})
    result = ingest("samm", layout.root, layout.labels, SAMM_5, on_error="fail")
    assert result.report["subjects"] == ["006", "007", "011"]  # 020 only has Fear
    assert result.report["dropped_by_protocol"] == {"fear": 1}
    assert result.report["rejected"] == []


def test_subject_list_mismatch_prints_a_list_yaml_reads_back(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path)
    with pytest.raises(IngestError) as err:
        ingest("samm", layout.root, layout.labels, SAMM_5, expected_subjects=["006", "011"])
    message = str(err.value)
    assert "params: ['006', '011']" in message and "data:   ['006', '007', '011']" in message
    printed = yaml.safe_load(message.split("Set it to the data's list:\n", 1)[1])
    assert printed == {"subjects": ["006", "007", "011"]}  # not [6, 7, 9]: 006 and 011 are octal in YAML 1.1
    fixed = ingest("samm", layout.root, layout.labels, SAMM_5, expected_subjects=printed["subjects"])
    assert fixed.report["subjects"] == ["006", "007", "011"]


def test_subjects_and_clips_are_in_natural_order(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"dropped_depth"})
    result = ingest("casme3", layout.root, layout.labels, CASME3_4)
    assert result.report["subjects"] == ["spNO.1", "spNO.2", "spNO.10"]
    assert sorted(result.report["subjects"]) != result.report["subjects"]  # plain sorting would differ
    assert [c.sample_id for c in result.clips] == [
        "spNO.1/a/355",
        "spNO.1/a/380",
        "spNO.2/b/166",
        "spNO.10/j/28",
        "spNO.10/k/50",
    ]
    assert result.report["per_class"] == {"positive": 1, "negative": 2, "surprise": 1, "others": 1}
    assert result.report["reader_counts"] == {"keyframe_moved": 1, "unpaired_frame": 1}


def test_natural_key_orders_numbers_by_value() -> None:
    assert sorted(["s10", "s2", "S1", "s2b"], key=natural_key) == ["S1", "s2", "s2b", "s10"]


def test_mmew_and_generic_go_through_ingest(tmp_path: Path) -> None:
    mmew = ingest("mmew", *fixtures.mmew(tmp_path / "m").paths, MMEW_4)
    assert mmew.report["subjects"] == ["S01", "S02"] and mmew.report["dropped_by_protocol"] == {"fear": 1}
    csv = ingest("csv", *fixtures.generic(tmp_path / "g").paths, GENERIC_2)
    assert csv.report["subjects"] == ["s1", "s2", "s10"]
    assert csv.report["per_class"] == {"positive": 2, "negative": 1}


def test_duplicate_micro_expression_in_one_video_is_rejected(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"duplicate"})
    report = ingest("casme3", layout.root, layout.labels, CASME3_4, on_error="skip").report
    assert report["clips"] == 5
    assert [(r["sample_id"], r["source"]) for r in report["rejected"]] == [
        ("spNO.1/a/355", f"{layout.labels}:row {layout.rows['duplicate']}")
    ]


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    with pytest.raises(IngestError, match="unknown data-set format 'smic_e'"):
        ingest("smic_e", layout.root, layout.labels, CASME2_5)
    with pytest.raises(IngestError, match="on_error must be one of"):
        ingest("casme2", layout.root, layout.labels, CASME2_5, on_error="ignore")


def test_no_usable_clip_is_an_error(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    nothing = Protocol("none", ("anger",), {"anger": "anger"})
    with pytest.raises(IngestError, match="no usable clip under protocol 'none'"):
        ingest("casme2", layout.root, layout.labels, nothing)
