from pathlib import Path

import pytest

from mer.datasets import samm
from mer.datasets.keyframes import Repair
from mer.datasets.records import IngestError
from tests.datasets import fixtures
from tests.datasets.fixtures import ROW_FAULT_REASONS, rejection_for

IDS = ["006/006_1_2", "006/006_1_3", "007/007_3_1", "011/011_2_1", "011/011_2_2", "020/020_1_1"]


def test_header_is_found_below_the_notes_block(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path, {"notes_block"})
    result = samm.read(layout.root, layout.labels)
    assert [c.sample_id for c in result.clips] == IDS
    assert result.rejected == []
    assert result.clips[0].source == f"{layout.labels}:row 15"  # header on Excel row 14, as in the release


def test_frames_are_the_subjects_five_digit_files(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path)
    clip = samm.read(layout.root, layout.labels, margin=2).clips[0]
    assert (clip.subject, clip.clip, clip.onset, clip.apex, clip.offset) == ("006", "006_1_2", 5562, 5565, 5570)
    assert clip.frame_numbers == list(range(5560, 5573))
    assert clip.frames[2] == str(layout.root / "006" / "006_1_2" / "006_05562.jpg")


def test_emotions_are_lower_cased(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path)
    emotions = [c.emotion for c in samm.read(layout.root, layout.labels).clips]
    assert emotions == ["happiness", "anger", "contempt", "surprise", "other", "fear"]


def test_columns_are_matched_by_name_not_order(tmp_path: Path) -> None:
    plain = samm.read(*fixtures.samm(tmp_path / "a").paths)
    shuffled = samm.read(*fixtures.samm(tmp_path / "b", {"reordered_columns", "notes_block", "text_numbers"}).paths)
    assert [(c.sample_id, c.onset, c.apex, c.offset, c.emotion) for c in shuffled.clips] == [
        (c.sample_id, c.onset, c.apex, c.offset, c.emotion) for c in plain.clips
    ]


def test_apex_minus_one_is_repaired_or_rejected(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path, {"apex_missing"})
    repaired = next(c for c in samm.read(layout.root, layout.labels).clips if c.clip == "006_1_3")
    assert (repaired.apex, repaired.apex_repaired) == (1004, True)
    result = samm.read(layout.root, layout.labels, repair=Repair(apex_missing="reject"))
    assert rejection_for(result, layout, "006/006_1_3").reason == "apex not labelled (-1)"


@pytest.mark.parametrize("fault", sorted(ROW_FAULT_REASONS))
def test_faulty_row_is_rejected_with_its_reason_and_row(tmp_path: Path, fault: str) -> None:
    layout = fixtures.samm(tmp_path, {fault, "notes_block"})
    result = samm.read(layout.root, layout.labels)
    assert ROW_FAULT_REASONS[fault] in rejection_for(result, layout, fault).reason
    assert [c.sample_id for c in result.clips] == IDS


def test_missing_frame_and_unpadded_subject_folder(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path, {"missing_frame", "subject_without_clip"})
    result = samm.read(layout.root, layout.labels)
    assert "apex frame 5565 has no file" in rejection_for(result, layout, "006/006_1_2").reason
    assert rejection_for(result, layout, "subject_without_clip").sample_id == "033/no_frames"


def test_missing_column_and_corrupt_table_stop_the_read(tmp_path: Path) -> None:
    layout = fixtures.samm(tmp_path / "a", {"missing_column", "notes_block"})
    with pytest.raises(IngestError, match=r"missing column 'Apex Frame'"):
        samm.read(layout.root, layout.labels)
    layout = fixtures.samm(tmp_path / "b", {"corrupt"})
    with pytest.raises(IngestError, match="cannot read label table"):
        samm.read(layout.root, layout.labels)
