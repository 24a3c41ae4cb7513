import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer.datasets import casme3
from mer.datasets.records import IngestError
from tests.datasets import fixtures
from tests.datasets.fixtures import ROW_FAULT_REASONS, rejection_for

IDS = ["spNO.1/a/355", "spNO.1/a/380", "spNO.2/b/166", "spNO.10/j/28", "spNO.10/k/50"]


def test_reads_every_micro_expression_with_colour_and_depth(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"text_numbers"})
    result = casme3.read(layout.root, layout.labels, margin=4)
    assert [c.sample_id for c in result.clips] == IDS
    assert result.rejected == [] and sum(result.counts.values()) == 0
    clip = result.clips[0]
    assert (clip.subject, clip.clip, clip.onset, clip.apex, clip.offset) == ("spNO.1", "a", 355, 359, 360)
    assert clip.frame_numbers == list(range(351, 365))
    video = layout.root / "spNO.1" / "a"
    assert clip.frames[0] == str(video / "color" / "351.jpg")
    assert clip.depth_frames == [str(video / "depth" / f"{n}.png") for n in clip.frame_numbers]
    assert cv2.imread(clip.depth_frames[0], cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_onset_equal_to_apex_is_legal(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path)
    clip = casme3.read(layout.root, layout.labels).clips[2]
    assert (clip.sample_id, clip.onset, clip.apex, clip.offset) == ("spNO.2/b/166", 166, 166, 175)


def test_dropped_depth_frame_moves_the_apex_to_the_nearest_pair(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"dropped_depth"})
    result = casme3.read(layout.root, layout.labels, margin=4)
    clip = result.clips[1]
    assert (clip.sample_id, clip.onset, clip.apex, clip.offset) == ("spNO.1/a/380", 380, 382, 390)  # tie: earlier
    assert 383 not in clip.frame_numbers and len(clip.frames) == len(clip.depth_frames) == 18
    assert result.counts == Counter({"keyframe_moved": 1, "unpaired_frame": 1})


def test_dropped_colour_frames_are_left_out_of_both_modalities(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"dropped_color"})
    result = casme3.read(layout.root, layout.labels, margin=4)
    clip = result.clips[2]
    assert (clip.sample_id, clip.onset, clip.apex) == ("spNO.2/b/166", 165, 165)  # the id keeps the labelled onset
    assert {166, 170}.isdisjoint(clip.frame_numbers)
    assert [Path(f).stem for f in clip.frames] == [Path(f).stem for f in clip.depth_frames]
    assert result.counts == Counter({"keyframe_moved": 2, "unpaired_frame": 2})


def test_frame_missing_in_both_modalities_moves_too(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"missing_frame"})
    clip = casme3.read(layout.root, layout.labels).clips[0]
    assert (clip.sample_id, clip.apex) == ("spNO.1/a/355", 358)


def test_a_gap_longer_than_max_step_is_rejected(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"long_gap"})
    result = casme3.read(layout.root, layout.labels)
    assert (
        rejection_for(result, layout, "spNO.10/j/28").reason
        == f"apex frame 33 has no colour+depth pair within {casme3.MAX_STEP} frames (nearest is 27)"
    )


def test_upper_case_filename_finds_its_folder_and_keeps_a_stable_id(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"upper_case_filename", "capitalised_others"})
    result = casme3.read(layout.root, layout.labels)
    assert [c.sample_id for c in result.clips] == IDS
    clip = result.clips[3]
    assert clip.clip == "j" and clip.frames[0].startswith(str(layout.root / "spNO.10" / "j" / "color"))
    assert result.clips[0].emotion == "others"


def test_missing_depth_folder_is_named(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path)
    shutil.rmtree(layout.root / "spNO.10" / "k" / "depth")
    reason = rejection_for(casme3.read(layout.root, layout.labels), layout, "spNO.10/k/50").reason
    assert reason == f"frame folder missing: {layout.root / 'spNO.10' / 'k' / 'depth'}"


@pytest.mark.parametrize("fault", sorted(ROW_FAULT_REASONS))
def test_faulty_row_is_rejected_with_its_reason_and_row(tmp_path: Path, fault: str) -> None:
    layout = fixtures.casme3(tmp_path, {fault, "text_numbers"})
    result = casme3.read(layout.root, layout.labels)
    assert ROW_FAULT_REASONS[fault] in rejection_for(result, layout, fault).reason
    assert [c.sample_id for c in result.clips] == IDS


def test_missing_column_and_corrupt_table_stop_the_read(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path / "a", {"missing_column"})
    with pytest.raises(IngestError, match=r"missing column 'Apex'"):
        casme3.read(layout.root, layout.labels)
    layout = fixtures.casme3(tmp_path / "b", {"corrupt"})
    with pytest.raises(IngestError, match="cannot read label table"):
        casme3.read(layout.root, layout.labels)
