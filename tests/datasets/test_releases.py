"""The real tables as released: the known key-frame faults are repaired by errata or rules (counted
and listed), the folder layouts the releases unpack to are found, and the default settings give
the issue's exact counts."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mer.datasets import casme2, casme3, errata, samm
from mer.datasets.ingest import ingest
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair, key_frames
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from mer.report import readme
from tests.datasets import fixtures

ROOT = Path(__file__).resolve().parents[2]
ANNOTATIONS = Path(os.environ.get("MER_CASME3_ANNOTATIONS", ROOT.parent / "shared/data/casme3-annotations"))
CONFIG = yaml.safe_load((ROOT / "conf/config.yaml").read_text())
PROTOCOLS = CONFIG["protocols"]


def dataset_config(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf/dataset" / f"{name}.yaml").read_text())["dataset"]


def real_casme3_table() -> Path:
    path = ANNOTATIONS / fixtures.CASME3_TABLE
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing (CI is set; set MER_CASME3_ANNOTATIONS to its folder)")
        pytest.skip(f"{path} not present")
    return path


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize(
    "cells,expected",
    [
        ((1071, 1143, 1134), (1071, 1102, 1134, ("apex_outside",))),  # SAMM 028_4_1: apex after offset
        ((4896, 1930, 4970), (4896, 4933, 4970, ("apex_outside",))),  # SAMM 032_3_1: apex before onset
        ((112, 83, 358), (112, 235, 358, ("apex_outside",))),  # CAS(ME)^3 row 130
        ((1812, 1824, 0), (1812, 1824, 1836, ("offset_invalid",))),  # CAS(ME)^3 row 798: offset 0
        ((3647, 2668, 2694), (3647, 3647, 3647, ("offset_invalid", "apex_outside"))),  # row 751
        ((20, "/", ""), (20, 20, 20, ("offset_invalid", "apex_missing"))),
        ((0, 0, 25), (0, 0, 25, ())),
    ],
)
def test_rules_repair_the_released_faults(cells: tuple, expected: tuple) -> None:
    keys = key_frames(*cells)
    assert (keys.onset, keys.apex, keys.offset, keys.repairs) == expected


def test_each_rule_can_reject_instead() -> None:
    with pytest.raises(ValueError, match=r"apex frame 1143 outside onset..offset 1071..1134"):
        key_frames(1071, 1143, 1134, Repair(apex_outside="reject"))
    with pytest.raises(ValueError, match="offset frame 0 is before onset frame 1812"):
        key_frames(1812, 1824, 0, Repair(offset_invalid="reject"))
    with pytest.raises(ValueError, match="onset is empty"):
        key_frames("", 5, 9)
    with pytest.raises(ValueError, match=r"ingest.apex_outside must be one of \('middle', 'reject', 'spot'\)"):
        Repair(apex_outside="clamp")


def test_spot_gives_the_middle_and_names_the_rule_for_the_apex_stage() -> None:
    spot = Repair(apex_missing="spot", apex_outside="spot")
    keys = key_frames(20, "/", 30, spot)
    assert (keys.apex, keys.repairs) == (25, ("apex_missing",))
    assert key_frames(1071, 1143, 1134, spot).repairs == ("apex_outside",)
    assert spot.spotted() == ("apex_missing", "apex_outside")
    assert Repair(apex_missing="spot").spotted() == ("apex_missing",) and DEFAULT_REPAIR.spotted() == ()
    with pytest.raises(ValueError, match="ingest.apex_outside: spot needs ingest.apex_repair: spot"):
        Repair(apex_outside="spot")
    assert Repair.from_params(
        {"apex_repair": "spot", "apex_outside": "middle", "offset_invalid": "mirror", "errata": True}
    ).spotted() == ("apex_missing",)


def test_repair_reads_the_ingest_block_of_params() -> None:
    assert Repair.from_params(CONFIG["ingest"]) == Repair()


# ---------------------------------------------------------------- CAS(ME)^3 part A, the real table

CASME3_FIXES = {  # spreadsheet row -> (field, old, new), as MEB publishes them (pandas index + 2)
    130: [("apex", 83, 123)],
    710: [("offset", 3460, 34)],
    751: [("onset", 3647, 2647)],
    752: [("onset", 0, 1), ("apex", 0, 1)],
    798: [("offset", 0, 1845)],
    800: [("offset", 0, 2403)],
}


def release_frames(table: Path, root: Path) -> None:
    """Empty colour and depth files under `root`/<Subject>/<filename>/ for every frame a row names,
    raw or corrected, with 4 frames of margin (ingest lists names, it never opens the files)."""
    sheet = pd.read_excel(table, sheet_name="label", dtype=str)
    spans: dict[Path, set[int]] = {}
    for i, row in sheet.iterrows():
        numbers = [int(row[c]) for c in ("Onset", "Apex", "Offset")]
        numbers += [new for _, _, new in CASME3_FIXES.get(int(i) + 2, [])]
        keys = spans.setdefault(root / row["Subject"] / row["Filename"].lower(), set())
        keys.update(range(max(0, min(numbers) - 4), max(numbers) + 5))
    for video, numbers in spans.items():
        for modality, ext in (("color", "jpg"), ("depth", "png")):
            (video / modality).mkdir(parents=True)
            for n in numbers:
                (video / modality / f"{n}.{ext}").touch()


@pytest.fixture(scope="module")
def casme3_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real table, and its frames in the released layout: part_A/data/part_A/spNO.1/a/color/0.jpg."""
    table = real_casme3_table()
    data = tmp_path_factory.mktemp("casme3") / "part_A" / "data"
    release_frames(table, data / "part_A")
    return table, data


def test_errata_rows_hold_what_they_correct() -> None:
    """Each erratum's row, checked against the real table independently of mer.datasets.errata."""
    sheet = pd.read_excel(real_casme3_table(), sheet_name="label", dtype=str)
    ours = {(e.row, e.field, e.old, e.new) for e in errata.ERRATA if e.table == fixtures.CASME3_TABLE}
    assert ours == {(row, *fix) for row, fixes in CASME3_FIXES.items() for fix in fixes}
    for e in errata.ERRATA:
        cells = sheet.iloc[e.row - 2]
        assert (f"{cells['Subject']}/{cells['Filename']}", int(cells[e.field.capitalize()])) == (e.clip, e.old)


def test_real_casme3_ingests_all_860_clips_by_default(casme3_release: tuple[Path, Path]) -> None:
    table, root = casme3_release
    config = dataset_config("casme3_4class")
    assert root.as_posix().endswith(config["root"].removeprefix("data/raw/CASME3/"))
    protocol = Protocol.from_params(config["protocol"], PROTOCOLS)
    result = ingest("casme3", root, table, protocol, expected_subjects=config["subjects"])
    report = result.report
    assert report["clips"] == 860 and len(report["subjects"]) == 94 and report["rejected"] == []
    assert report["per_class"] == {"positive": 55, "negative": 457, "surprise": 187, "others": 161}
    assert report["data_root"] == str(root / "part_A")
    assert [(e["row"], e["field"], e["applied"]) for e in report["errata"]] == [
        (row, field, True) for row, fixes in CASME3_FIXES.items() for field, _, _ in fixes
    ]
    assert report["repairs"] == {"erratum": 6, "offset_invalid": 0, "apex_missing": 0, "apex_outside": 0}
    assert report["repaired"]["erratum"] == [
        "spNO.40/e/1812",
        "spNO.40/e/2327",
        "spNO.149/d/112",
        "spNO.214/c/5",
        "spNO.216/d/2647",
        "spNO.216/e/1",
    ]
    clips = {c.sample_id: c for c in result.clips}
    assert (clips["spNO.149/d/112"].apex, clips["spNO.40/e/1812"].offset) == (123, 1845)
    assert clips["spNO.1/a/355"].frames[0] == str(root / "part_A/spNO.1/a/color/351.jpg")


def test_real_casme3_without_errata_is_repaired_by_the_rules(casme3_release: tuple[Path, Path]) -> None:
    table, root = casme3_release
    protocol = Protocol.from_params("casme3_4class", PROTOCOLS)
    report = ingest("casme3", root, table, protocol, repair=Repair(errata=False)).report
    assert report["clips"] == 860 and report["errata"] == []
    assert report["repaired"] == {
        "erratum": [],
        "offset_invalid": ["spNO.40/e/1812", "spNO.40/e/2327", "spNO.216/d/3647"],
        "apex_missing": [],
        "apex_outside": ["spNO.149/d/112", "spNO.216/d/3647"],
    }


def test_real_casme3_faults_stop_ingest_when_rules_reject(casme3_release: tuple[Path, Path]) -> None:
    table, root = casme3_release
    strict = Repair(offset_invalid="reject", apex_outside="reject", errata=False)
    result = casme3.read(root, table, repair=strict)
    assert len(result.clips) == 856
    assert sorted((r.source.rsplit(":row ", 1)[1], r.sample_id, r.reason) for r in result.rejected) == [
        ("130", "spNO.149/d", "apex frame 83 outside onset..offset 112..358"),
        ("751", "spNO.216/d", "offset frame 2694 is before onset frame 3647"),
        ("798", "spNO.40/e", "offset frame 0 is before onset frame 1812"),
        ("800", "spNO.40/e", "offset frame 0 is before onset frame 2327"),
    ]
    with pytest.raises(IngestError, match="4 label row"):
        ingest("casme3", root, table, Protocol.from_params("casme3_4class", PROTOCOLS), repair=strict)


def test_real_casme3_table_without_frames_names_the_missing_folders(tmp_path: Path) -> None:
    result = casme3.read(tmp_path, real_casme3_table())
    assert result.clips == [] and len(result.subjects) == 94
    assert Counter(r.reason.split(":")[0] for r in result.rejected) == {"frame folder missing": 860}


# ---------------------------------------------------------------- layouts


@pytest.mark.parametrize(
    "fault,found", [("released_layout", "part_A/data/part_A"), ("split_layout", "part_A_split/part_A")]
)
def test_casme3_subjects_are_found_below_the_root(tmp_path: Path, fault: str, found: str) -> None:
    layout = fixtures.casme3(tmp_path, {fault, "dropped_depth"})
    result = casme3.read(*layout.paths)
    assert result.data_root == str(tmp_path / found) and result.rejected == []
    assert [c.sample_id for c in result.clips] == [
        "spNO.1/a/355",
        "spNO.1/a/380",
        "spNO.2/b/166",
        "spNO.10/j/28",
        "spNO.10/k/50",
    ]


def test_search_is_bounded_and_names_the_given_root_when_nothing_is_found(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"released_layout"})
    deep = tmp_path / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (layout.root / "part_A").rename(deep / "part_A")
    result = casme3.read(tmp_path / "a", layout.labels)
    assert result.data_root == str(tmp_path / "a") and result.clips == []
    assert f"frame folder missing: {tmp_path / 'a' / 'spNO.1' / 'a' / 'color'}" in result.rejected[0].reason


def test_wrong_sheet_is_a_clear_error(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)  # a CASME II table has no sheet `label`
    with pytest.raises(IngestError, match=r"no sheet named 'label' \(the workbook has 'Sheet'\); is this the right"):
        casme3.read(layout.root, layout.labels)


# ---------------------------------------------------------------- SAMM v2 and CASME II table versions


def test_samm_release_gives_the_issue_counts_with_the_shipped_config(tmp_path: Path) -> None:
    layout = fixtures.samm_release(tmp_path)
    config = dataset_config("samm_5class")
    protocol = Protocol.from_params(config["protocol"], PROTOCOLS)
    result = ingest("samm", *layout.paths, protocol, expected_subjects=config["subjects"])
    report = result.report
    assert report["clips"] == 136 and report["subjects"] == fixtures.SAMM_SUBJECTS_5CLASS == config["subjects"]
    assert report["per_class"] == {"happiness": 26, "anger": 57, "contempt": 12, "surprise": 15, "other": 26}
    assert report["dropped_by_protocol"] == {"disgust": 9, "fear": 8, "sadness": 6}
    assert report["repaired"]["apex_outside"] == ["028/028_4_1", "032/032_3_1"] and report["rejected"] == []
    clip = next(c for c in result.clips if c.clip == "028_4_1")
    assert (clip.onset, clip.apex, clip.offset, clip.source) == (
        1071,
        1102,
        1134,
        f"{layout.labels}:row {layout.rows['028/028_4_1']}",
    )


def test_samm_inconsistent_rows_stop_ingest_only_when_asked(tmp_path: Path) -> None:
    layout = fixtures.samm_release(tmp_path)
    with pytest.raises(IngestError) as err:
        ingest(
            "samm", *layout.paths, Protocol.from_params("samm_5class", PROTOCOLS), repair=Repair(apex_outside="reject")
        )
    message = str(err.value)
    assert message.startswith("2 label row(s) rejected")
    assert (
        f"row {layout.rows['032/032_3_1']} (032/032_3_1): apex frame 1930 outside onset..offset 4896..4970" in message
    )


def test_both_casme2_table_versions_and_au_cells_read_the_same(tmp_path: Path) -> None:
    old = casme2.read(*fixtures.casme2(tmp_path / "a").paths)
    new_layout = fixtures.casme2(tmp_path / "b", {"coding_2019"})
    new = casme2.read(*new_layout.paths)
    assert new_layout.labels.name == "CASME2-coding-20190701.xlsx"
    assert [(c.sample_id, c.onset, c.apex, c.offset, c.emotion) for c in new.clips] == [
        (c.sample_id, c.onset, c.apex, c.offset, c.emotion) for c in old.clips
    ]
    assert len(new.clips) == 5 and new.rejected == []
    assert (old.table_version, new.table_version) == ("2014", "2019")  # told apart by Objective Classes
    assert samm.read(*fixtures.samm(tmp_path / "c").paths).rejected == []  # AU cells "R12"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "reader,writer,found",
    [(casme2, fixtures.samm, "samm"), (samm, fixtures.casme2, "casme2"), (casme2, fixtures.mmew, "mmew")],
)
def test_a_table_of_another_data_set_is_named(tmp_path: Path, reader, writer, found: str) -> None:
    layout = writer(tmp_path)
    fmt = reader.__name__.rsplit(".", 1)[1]
    with pytest.raises(IngestError) as err:
        reader.read(*layout.paths)
    assert str(err.value).startswith(f"{layout.labels}: this looks like the {found} label table (its columns: ")
    assert str(err.value).endswith(f"set dataset.format={found}, or point dataset.labels at the {fmt} table")


def test_an_unknown_label_is_rejected_naming_row_and_fix(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    import openpyxl

    book = openpyxl.load_workbook(layout.labels)
    book.active["I3"] = "Happines"  # row 3: sub01/EP03_02
    book.save(layout.labels)
    protocol = Protocol.from_params("casme2_5class", PROTOCOLS)
    with pytest.raises(IngestError) as err:
        ingest("casme2", *layout.paths, protocol)
    assert (
        f"{layout.labels}:row 3 (sub01/EP03_02): unknown label 'happines' (the casme2 labels are disgust, fear, "
        "happiness, others, repression, sadness, surprise): fix the cell, or map it in protocols.casme2_5class.map"
    ) in str(err.value)
    report = ingest("casme2", *layout.paths, protocol, on_error="skip").report
    assert report["dropped_by_protocol"] == {"fear": 1} and report["rejected_count"] == 1


def test_page_lines_name_the_table_and_every_repaired_clip(tmp_path: Path) -> None:
    layout = fixtures.samm_release(tmp_path)
    report = ingest("samm", *layout.paths, Protocol.from_params("samm_5class", PROTOCOLS)).report
    report["dataset"] = {"labels_file": layout.labels.name, "labels_sha256": "ab" * 32}
    assert readme.data_lines(report) == [
        "## Data",
        "",
        f"- label table `SAMM_Micro_FACS_Codes_v2.xlsx`, SHA-256 `{'ab' * 32}`",
        f"- frames from `{layout.root}`",
        "- 0 published correction(s) applied",
        "- apex_outside: 2 clip(s): 028/028_4_1, 032/032_3_1",
        "",
    ]
