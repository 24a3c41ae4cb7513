from pathlib import Path

import pytest

from mer.datasets import generic
from mer.datasets.keyframes import Repair
from mer.datasets.records import IngestError
from tests.datasets import fixtures
from tests.datasets.fixtures import ROW_FAULT_REASONS, rejection_for

IDS = ["s1/c1", "s2/c2", "s10/c3"]


@pytest.mark.parametrize(
    "pattern, name, number",
    [
        ("img{}.jpg", "img12.jpg", 12),
        ("{:05d}.png", "00007.png", 7),
        ("{0:d}.jpg", "31.jpg", 31),
        ("frame[{:05d}].jpg", "frame[00012].jpg", 12),
        ("a+b (1){}.JPG", "a+b (1)9.JPG", 9),
        ("{{{}}}.jpg", "{4}.jpg", 4),
    ],
)
def test_pattern_matches_the_names_it_makes(pattern: str, name: str, number: int) -> None:
    match = generic.pattern_regex(pattern).fullmatch(name)
    assert match and int(match.group(1)) == number


@pytest.mark.parametrize(
    "pattern, name",
    [
        ("img{}.jpg", "imgX.jpg"),
        ("img{}.jpg", "img1xjpg"),  # the dot is literal
        ("frame[{:05d}].jpg", "frame0.jpg"),  # the brackets are literal, not a character class
        ("a+b{}.jpg", "aab1.jpg"),
        ("img{}.jpg", "img1.jpg.bak"),
    ],
)
def test_pattern_refuses_other_names(pattern: str, name: str) -> None:
    assert generic.pattern_regex(pattern).fullmatch(name) is None


@pytest.mark.parametrize(
    "pattern, reason",
    [
        ("img{}{}.jpg", "exactly one integer field"),
        ("img.jpg", "exactly one integer field"),
        ("{name}.jpg", "exactly one integer field"),
        ("{:x}.jpg", "exactly one integer field"),
        ("{:>5}.jpg", "exactly one integer field"),
        ("{!r}.jpg", "exactly one integer field"),
        ("img{.jpg", "is not a format string"),
        ("sub/{}.jpg", "must be a file name"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        generic.pattern_regex(pattern)


def test_reads_every_layout_of_the_manifest(tmp_path: Path) -> None:
    layout = fixtures.generic(tmp_path)
    result = generic.read(layout.root, layout.labels, margin=2)
    assert [c.sample_id for c in result.clips] == IDS
    assert result.rejected == []
    plain, odd, depth = result.clips
    assert plain.frames[0] == str(layout.root / "s1" / "c1" / "img1.jpg") and plain.depth_frames is None
    assert odd.frame_numbers == list(range(8, 18))
    assert odd.frames[0] == str(layout.root / "videos" / "s2 (take+1)" / "c2" / "frame[00008].jpg")
    assert depth.frames[0] == str(layout.root / "s10" / "c3" / "005.png")
    assert depth.depth_frames == [str(layout.root / "s10" / "c3_depth" / f"d{n:03d}.png") for n in depth.frame_numbers]
    assert [c.emotion for c in result.clips] == ["happy", "sad", "happy"]


def test_key_frame_without_depth_is_rejected(tmp_path: Path) -> None:
    layout = fixtures.generic(tmp_path, {"dropped_depth"})
    reason = rejection_for(generic.read(layout.root, layout.labels), layout, "s10/c3").reason
    assert reason == f"apex frame 9 has no file in {layout.root / 's10' / 'c3'} (colour and depth)"


def test_bad_pattern_rejects_only_its_row(tmp_path: Path) -> None:
    layout = fixtures.generic(tmp_path, {"bad_pattern"})
    result = generic.read(layout.root, layout.labels)
    assert "'img{}{}.jpg' must hold exactly one integer field" in rejection_for(result, layout, "bad_pattern").reason
    assert [c.sample_id for c in result.clips] == IDS


@pytest.mark.parametrize("fault", sorted(ROW_FAULT_REASONS))
def test_faulty_row_is_rejected_with_its_reason_and_row(tmp_path: Path, fault: str) -> None:
    layout = fixtures.generic(tmp_path, {fault})
    result = generic.read(layout.root, layout.labels)
    assert ROW_FAULT_REASONS[fault] in rejection_for(result, layout, fault).reason
    assert [c.sample_id for c in result.clips] == IDS


def test_blank_lines_do_not_shift_row_numbers(tmp_path: Path) -> None:
    layout = fixtures.generic(tmp_path, {"offset_before_onset"})
    lines = layout.labels.read_text().splitlines(keepends=True)
    layout.labels.write_text("".join(lines[:2] + ["\n"] + lines[2:]))  # blank line 3
    result = generic.read(layout.root, layout.labels, repair=Repair(offset_invalid="reject"))
    assert [c.source for c in result.clips] == [f"{layout.labels}:row {n}" for n in (2, 4, 5)]
    assert result.rejected[0].source == f"{layout.labels}:row {layout.rows['offset_before_onset'] + 1}"


def test_depth_dir_without_depth_pattern_stops_the_read(tmp_path: Path) -> None:
    layout = fixtures.generic(tmp_path)
    lines = layout.labels.read_text().splitlines()
    layout.labels.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    with pytest.raises(IngestError, match="missing column 'depth_pattern'"):
        generic.read(layout.root, layout.labels)


def test_missing_column_and_corrupt_table_stop_the_read(tmp_path: Path) -> None:
    layout = fixtures.generic(tmp_path / "a", {"missing_column"})
    with pytest.raises(IngestError, match=r"missing column 'apex'"):
        generic.read(layout.root, layout.labels)
    layout = fixtures.generic(tmp_path / "b", {"corrupt"})
    with pytest.raises(IngestError, match="cannot read label table"):
        generic.read(layout.root, layout.labels)
