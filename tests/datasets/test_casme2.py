from pathlib import Path

import openpyxl
import pytest

from mer.datasets import casme2
from mer.datasets.keyframes import Repair
from mer.datasets.records import IngestError
from tests.datasets import fixtures
from tests.datasets.fixtures import ROW_FAULT_REASONS, rejection_for

IDS = ["sub01/EP02_01f", "sub01/EP03_02", "sub02/EP01_11f", "sub02/EP05_03", "sub10/EP07_01"]


def test_reads_every_clip_with_its_frames(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    result = casme2.read(layout.root, layout.labels, margin=4)
    assert [c.sample_id for c in result.clips] == IDS
    assert result.rejected == []
    assert result.subjects == {"sub01", "sub02", "sub10"}
    clip = result.clips[0]
    assert (clip.subject, clip.clip, clip.onset, clip.apex, clip.offset) == ("sub01", "EP02_01f", 10, 13, 16)
    assert clip.emotion == "happiness" and not clip.apex_repaired
    assert clip.frame_numbers == list(range(6, 21))  # onset - margin .. offset + margin
    assert clip.frames[0] == str(layout.root / "sub01" / "EP02_01f" / "img6.jpg")
    assert clip.source == f"{layout.labels}:row 2"
    assert [c.emotion for c in result.clips] == ["happiness", "disgust", "surprise", "fear", "repression"]


def test_blank_header_cells_are_really_blank(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    header = [cell.value for cell in openpyxl.load_workbook(layout.labels).active[1]]
    assert header[2] is None and header[6] is None and header[3] == "OnsetFrame"


def test_text_stored_numbers_read_the_same(tmp_path: Path) -> None:
    plain = casme2.read(*fixtures.casme2(tmp_path / "a").paths)
    text = casme2.read(*fixtures.casme2(tmp_path / "b", {"text_numbers"}).paths)
    assert [(c.sample_id, c.onset, c.apex, c.offset, c.frame_numbers) for c in text.clips] == [
        (c.sample_id, c.onset, c.apex, c.offset, c.frame_numbers) for c in plain.clips
    ]


def test_apex_slash_is_repaired_to_the_middle(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"apex_missing"})
    clip = next(c for c in casme2.read(layout.root, layout.labels).clips if c.sample_id == "sub01/EP03_02")
    assert (clip.onset, clip.apex, clip.offset, clip.apex_repaired) == (20, 24, 28, True)


def test_apex_slash_is_rejected_when_asked(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"apex_missing"})
    result = casme2.read(layout.root, layout.labels, repair=Repair(apex_missing="reject"))
    assert "sub01/EP03_02" not in [c.sample_id for c in result.clips]
    assert rejection_for(result, layout, "sub01/EP03_02").reason == "apex not labelled ('/')"


@pytest.mark.parametrize("fault", sorted(ROW_FAULT_REASONS))
def test_faulty_row_is_rejected_with_its_reason_and_row(tmp_path: Path, fault: str) -> None:
    layout = fixtures.casme2(tmp_path, {fault})
    result = casme2.read(layout.root, layout.labels)
    assert ROW_FAULT_REASONS[fault] in rejection_for(result, layout, fault).reason
    assert [c.sample_id for c in result.clips] == IDS


def test_filename_climbing_into_a_sibling_folder_is_refused(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"escaping_filename"})
    assert (layout.root / "x" / "img13.jpg").is_file()  # root/sub01/../x exists: only the '..' is wrong
    rejection = rejection_for(casme2.read(layout.root, layout.labels), layout, "escaping_filename")
    assert rejection.reason.startswith("path 'sub01/../x' escapes the data root")
    assert rejection.sample_id == "sub01/../x"


def test_missing_frame_file_is_named(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"missing_frame"})
    result = casme2.read(layout.root, layout.labels)
    reason = rejection_for(result, layout, "sub01/EP02_01f").reason
    assert reason == f"apex frame 13 has no file in {layout.root / 'sub01' / 'EP02_01f'}"


def test_missing_column_stops_the_read(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"missing_column"})
    with pytest.raises(IngestError, match=r"missing column 'ApexFrame'") as err:
        casme2.read(layout.root, layout.labels)
    assert str(layout.labels) in str(err.value)


def test_corrupt_table_stops_the_read(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"corrupt"})
    with pytest.raises(IngestError, match="cannot read label table") as err:
        casme2.read(layout.root, layout.labels)
    assert str(err.value).startswith(str(layout.labels))
