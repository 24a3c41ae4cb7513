from pathlib import Path

import pytest

from mer.datasets import mmew
from mer.datasets.records import IngestError
from tests.datasets import fixtures
from tests.datasets.fixtures import ROW_FAULT_REASONS, rejection_for

IDS = ["S01/S01-07-001", "S01/S01-07-002", "S02/S02-01-001", "S02/S02-03-004", "S10/S10-02-001"]


def test_reads_clips_from_emotion_folders(tmp_path: Path) -> None:
    layout = fixtures.mmew(tmp_path)
    result = mmew.read(layout.root, layout.labels, margin=4)
    assert [c.sample_id for c in result.clips] == IDS
    assert result.rejected == []
    assert result.subjects == {"S01", "S02", "S10"}
    clip = result.clips[0]
    assert (clip.onset, clip.apex, clip.offset, clip.emotion) == (2, 5, 9, "happiness")
    assert clip.frame_numbers == list(range(1, 14))  # frames start at 1: the margin is cut there
    assert clip.frames[0] == str(layout.root / "happiness" / "S01-07-001" / "1.jpg")


def test_subjects_typed_as_numbers_give_the_same_ids(tmp_path: Path) -> None:
    layout = fixtures.mmew(tmp_path, {"numeric_subjects", "text_numbers"})
    assert [c.sample_id for c in mmew.read(layout.root, layout.labels).clips] == IDS


@pytest.mark.parametrize("cell, subject", [("S01", "S01"), ("s1", "S01"), (7, "S07"), ("12.0", "S12"), (" S3 ", "S03")])
def test_subject_id_normalises(cell: object, subject: str) -> None:
    assert mmew.subject_id(cell) == subject


@pytest.mark.parametrize("cell", ["", "subject 1", "S1a"])
def test_subject_id_refuses_other_text(cell: str) -> None:
    with pytest.raises(ValueError, match="subject is not of the form S01"):
        mmew.subject_id(cell)


def test_emotion_folders_are_matched_case_insensitively(tmp_path: Path) -> None:
    layout = fixtures.mmew(tmp_path, {"capitalised_folders"})
    result = mmew.read(layout.root, layout.labels)
    assert [c.sample_id for c in result.clips] == IDS
    assert result.clips[0].frames[0] == str(layout.root / "Happiness" / "S01-07-001" / "1.jpg")
    assert result.clips[0].emotion == "happiness"


def test_apex_marker_is_repaired_to_the_middle(tmp_path: Path) -> None:
    layout = fixtures.mmew(tmp_path, {"apex_missing"})
    clip = mmew.read(layout.root, layout.labels).clips[1]
    assert (clip.sample_id, clip.apex, clip.apex_repaired) == ("S01/S01-07-002", 5, True)


@pytest.mark.parametrize("fault", sorted(ROW_FAULT_REASONS))
def test_faulty_row_is_rejected_with_its_reason_and_row(tmp_path: Path, fault: str) -> None:
    layout = fixtures.mmew(tmp_path, {fault})
    result = mmew.read(layout.root, layout.labels)
    assert ROW_FAULT_REASONS[fault] in rejection_for(result, layout, fault).reason
    assert [c.sample_id for c in result.clips] == IDS


def test_missing_frame_is_named(tmp_path: Path) -> None:
    layout = fixtures.mmew(tmp_path, {"missing_frame"})
    reason = rejection_for(mmew.read(layout.root, layout.labels), layout, "S01/S01-07-001").reason
    assert reason == f"apex frame 5 has no file in {layout.root / 'happiness' / 'S01-07-001'}"


def test_missing_column_and_corrupt_table_stop_the_read(tmp_path: Path) -> None:
    layout = fixtures.mmew(tmp_path / "a", {"missing_column"})
    with pytest.raises(IngestError, match=r"missing column 'ApexFrame'"):
        mmew.read(layout.root, layout.labels)
    layout = fixtures.mmew(tmp_path / "b", {"corrupt"})
    with pytest.raises(IngestError, match="cannot read label table"):
        mmew.read(layout.root, layout.labels)
