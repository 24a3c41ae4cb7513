"""`mer check-data` on a suite of wrong layouts: each problem says what it found, what it expected
and how to fix it; the exit code says whether ingest would run; nothing is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from mer.commands import check_data
from mer.commands.cli import main
from mer.datasets import casme2, check
from tests.datasets import fixtures

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def params(name: str, layout: fixtures.Layout, *extra: str) -> dict:
    """conf/ composed for dataset `name` pointing at the layout, as `mer check-data` composes it."""
    overrides = [f"dataset={name}", f"dataset.root='{layout.root}'", f"dataset.labels='{layout.labels}'", *extra]
    return check_data.load(ROOT / "params.yaml", CONF, overrides)


def casme2_params(layout: fixtures.Layout, subjects: str = "[sub01,sub02,sub10]") -> dict:
    return params("casme2_5class", layout, f"dataset.subjects={subjects}")


def only_problem(result: check.Check) -> check.Problem:
    assert len(result.problems) == 1, [p.what for p in result.problems]
    return result.problems[0]


def files_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*"))


def test_a_good_layout_passes_and_prints_the_subject_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout = fixtures.samm_release(tmp_path)
    before = files_under(tmp_path)
    code = main(
        [
            "check-data",
            "--conf",
            str(CONF),
            "dataset=samm_5class",
            f"dataset.root='{layout.root}'",
            f"dataset.labels='{layout.labels}'",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "check-data: ok, ingest will run" in out
    assert "159 of 159 table rows resolve to frame files" in out
    assert "136 clips in protocol 'samm_5class' from 27 subjects" in out and "'apex_outside': 2" in out
    assert 'subjects: ["006", "007", "009", "010"' in out
    assert files_under(tmp_path) == before  # reads only


def test_wrong_root_names_the_nearest_folder(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    problem = only_problem(
        check.check(params("casme2_5class", fixtures.Layout(tmp_path / "CASME2", layout.labels, {})))
    )
    assert problem.what == "data root not found"
    assert (
        f"no folder {tmp_path / 'CASME2'}; nearest existing is {tmp_path}, holding ['CASME2_RAW_selected']"
        in problem.found
    )
    assert "set dataset.root" in problem.fix


def test_table_not_found_offers_the_tables_nearby(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"coding_2019"})  # the config names the 2014 table
    wanted = tmp_path / "CASME2-coding-20140508.xlsx"
    problem = only_problem(check.check(casme2_params(fixtures.Layout(layout.root, wanted, {}))))
    assert (problem.what, problem.found) == ("label table not found", f"no file {wanted}")
    assert problem.fix == f"set dataset.labels to one of: {layout.labels}"


def test_header_not_found(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    import openpyxl

    book = openpyxl.load_workbook(layout.labels)
    book.active["A1"] = "Participant"
    book.save(layout.labels)
    problem = only_problem(check.check(casme2_params(layout)))
    assert problem.what == "header not found" and "no header row containing 'subject' found" in problem.found


def test_wrong_sheet_and_missing_column(tmp_path: Path) -> None:
    casme2_table = fixtures.casme2(tmp_path / "a").labels
    layout = fixtures.casme3(tmp_path / "b")
    problem = only_problem(check.check(params("casme3_4class", fixtures.Layout(layout.root, casme2_table, {}))))
    assert problem.what == "wrong sheet" and "no sheet named 'label'" in problem.found
    layout = fixtures.casme2(tmp_path / "c", {"missing_column"})
    problem = only_problem(check.check(casme2_params(layout)))
    assert problem.what == "missing column" and "missing column 'ApexFrame'" in problem.found


def test_unpadded_subject_folders_are_named(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    for folder in list(layout.root.iterdir()):
        folder.rename(layout.root / f"sub{int(folder.name[3:])}")
    problem = only_problem(check.check(casme2_params(layout)))
    assert problem.what == "subject folder naming"
    assert "4 rows name folders that do not exist" in problem.found and "['sub1', 'sub10', 'sub2']" in problem.found
    assert problem.expected == casme2.SPEC.folders
    assert "sub01 <- sub1, sub02 <- sub2)" in problem.fix and "<- sub10" not in problem.fix


def test_pre_clipped_casme3_release_is_named(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path)
    for subject in ("spNO.1", "spNO.2", "spNO.10"):
        shutil.rmtree(layout.root / subject)
    (layout.root / "spNo.1_a_355").mkdir()
    problem = only_problem(check.check(params("casme3_4class", layout, "dataset.subjects=[spNO.1,spNO.2,spNO.10]")))
    assert problem.what == "subject folder naming" and "spNO.1 <- spNo.1_a_355" in problem.fix


def test_released_casme3_nesting_is_found_and_said(tmp_path: Path) -> None:
    layout = fixtures.casme3(tmp_path, {"released_layout", "dropped_depth"})
    result = check.check(params("casme3_4class", layout, "dataset.subjects=[spNO.1,spNO.2,spNO.10]"))
    assert result.ok and f"subject folders found in {layout.root / 'part_A'}, below dataset.root" in result.notes[1]


def test_frame_file_naming(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path)
    for frame in layout.root.rglob("img*.jpg"):
        frame.rename(frame.with_name(frame.name.replace("img", "frame_")))
    problem = only_problem(check.check(casme2_params(layout)))
    assert problem.what == "frame file naming" and problem.expected == casme2.SPEC.frames
    assert "5 rows find no file named as expected" in problem.found and "frame_" in problem.found


def test_rows_that_do_not_resolve_are_counted_and_listed(tmp_path: Path) -> None:
    layout = fixtures.casme2(tmp_path, {"missing_frame"})
    result = check.check(casme2_params(layout))
    assert "4 of 5 table rows resolve to frame files" in result.notes
    problem = only_problem(result)
    assert problem.what == "1 row(s) rejected" and f"{layout.labels}:row 2: apex frame 13 has no file" in problem.found
    assert result.subjects == ["sub02", "sub10"] or result.subjects == ["sub01", "sub02", "sub10"]
    assert check.check(casme2_params(layout) | {"ingest": casme2_params(layout)["ingest"] | {"on_error": "skip"}}).ok


def test_subject_list_mismatch_prints_the_list_to_paste(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout = fixtures.casme2(tmp_path)
    code = main(
        [
            "check-data",
            "--conf",
            str(CONF),
            "dataset=casme2_5class",
            f"dataset.root='{layout.root}'",
            f"dataset.labels='{layout.labels}'",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "PROBLEM 1: LOSO subject list" in out
    assert 'subjects: ["sub01", "sub02", "sub10"]' in out and "ingest would fail" in out


def test_a_table_of_another_data_set_is_named(tmp_path: Path) -> None:
    samm_table = fixtures.samm(tmp_path / "a").labels
    layout = fixtures.casme2(tmp_path / "b")
    problem = only_problem(check.check(casme2_params(fixtures.Layout(layout.root, samm_table, {}))))
    assert problem.what == "table of another data set" and "this looks like the samm label table" in problem.found


def megc_params(tmp_path: Path, subjects: str | None = None, **roots: Path) -> dict:
    """dataset=megc2019 with its three parts pointing at fixtures in their release layouts, joined without
    the published sample list (the fixtures' clips are not MEGC 2019's)."""
    layouts = {
        "casme2": fixtures.casme2(tmp_path / "c"),
        "samm": fixtures.samm_release(tmp_path / "m"),
        "smic": fixtures.smic(tmp_path / "s"),
    }
    overrides = [
        override
        for part, layout in layouts.items()
        for override in (
            f"dataset.parts.{part}.root='{roots.get(part, layout.root)}'",
            f"dataset.parts.{part}.labels='{layout.labels}'",
        )
    ]
    if subjects is not None:
        overrides.append(f"dataset.subjects={subjects}")
    return check_data.load(
        ROOT / "params.yaml", CONF, ["dataset=megc2019", "dataset.protocol=megc2019_3class", *overrides]
    )


def test_a_composite_is_checked_part_by_part_and_its_fold_list_as_ingest_joins_it(tmp_path: Path) -> None:
    samm = fixtures.SAMM_SUBJECTS_5CLASS + ["024", "036"]  # every fixture subject has a 3-class clip
    expected = (
        ["casme2_sub01", "casme2_sub02", "casme2_sub10"]  # sub02 keeps its surprise clip, its fear one is dropped
        + [f"samm_{s}" for s in sorted(samm)]
        + [f"smic_{s}" for s in fixtures.SMIC_SUBJECTS]
    )
    result = check.check(megc_params(tmp_path))  # the shipped list is the real release's, not the fixtures'
    problem = only_problem(result)
    assert problem.what == "LOSO subject list" and result.subjects == expected
    samm_note = "part samm: 133 clips in protocol 'samm_3class_megc' from 29 subjects; per class {'positive': 26, "
    assert any(n.startswith(samm_note + "'negative': 92, 'surprise': 15}") for n in result.notes)  # MEGC's counts
    assert any(n.startswith("part smic: 164 clips in protocol 'smic_3class' from 16 subjects") for n in result.notes)

    fixed = check.check(megc_params(tmp_path / "again", subjects="[" + ",".join(expected) + "]"))
    assert fixed.ok and fixed.subjects == expected


def test_a_composite_by_data_set_is_checked_as_ingest_joins_it(tmp_path: Path) -> None:
    """dataset.folds: dataset (casme2_to_samm): dataset.subjects names the parts each fold tests on."""
    layouts = {"casme2": fixtures.casme2(tmp_path / "c"), "samm": fixtures.samm_release(tmp_path / "m")}
    overrides = [
        f"dataset.parts.{part}.{key}='{path}'"
        for part, layout in layouts.items()
        for key, path in (("root", layout.root), ("labels", layout.labels))
    ]
    result = check.check(check_data.load(ROOT / "params.yaml", CONF, ["dataset=casme2_to_samm", *overrides]))
    assert result.ok and result.subjects == ["casme2", "samm"], [p.what for p in result.problems]
    wrong = ["dataset=casme2_to_samm", *overrides, "dataset.subjects=[smic]"]
    problem = only_problem(check.check(check_data.load(ROOT / "params.yaml", CONF, wrong)))
    assert problem.what == "LOSO subject list" and "['smic'] is not a part with clips" in problem.fix


def published_params(layouts: dict[str, fixtures.Layout], *extra: str) -> dict:
    """dataset=megc2019 as shipped (its published sample list) on the parts' layouts."""
    overrides = [
        f"dataset.parts.{part}.{key}='{path}'"
        for part, layout in layouts.items()
        for key, path in (("root", layout.root), ("labels", layout.labels))
    ]
    return check_data.load(ROOT / "params.yaml", CONF, ["dataset=megc2019", *overrides, *extra])


def test_megc2019_is_checked_on_its_published_list(tmp_path: Path) -> None:
    layouts = fixtures.megc2019_release(tmp_path / "a", "2019")
    result = check.check(published_params(layouts))
    assert result.ok and len(result.subjects or []) == 68, [p.what for p in result.problems]
    assert result.subjects == published_params(layouts)["dataset"]["subjects"]
    left_out = next(n for n in result.notes if "left out by the sample list megc2019" in n)
    assert left_out.startswith("part casme2: 5 clip(s) left out by the sample list megc2019: casme2/sub04/EP12_01f")

    shutil.rmtree(layouts["smic"].root / "SMIC_all_raw/HS/s3/micro/negative/s3_ne_01")
    problem = only_problem(check.check(published_params(layouts)))
    assert problem.what == "part smic: 1 clip(s) of the sample list megc2019 not found as listed"
    assert problem.found.startswith(
        "sample list megc2019:row "
    ) and "(smic/s3/s3_ne_01): listed, but ingest_part@smic read no such clip" in (problem.found)
    skipped = check.check(published_params(layouts, "ingest.on_error=skip"))
    assert skipped.ok and any("1 listed clip(s) will be skipped" in n for n in skipped.notes)


def test_a_composite_names_the_part_whose_layout_is_wrong(tmp_path: Path) -> None:
    result = check.check(megc_params(tmp_path, samm=tmp_path / "nowhere"))
    problem = only_problem(result)
    assert problem.what.startswith("part samm: ") and str(tmp_path / "nowhere") in problem.found
    assert result.subjects is None  # no fold list is offered while a part cannot be read


def test_a_real_file_name_with_parentheses_is_read_and_its_dvc_form_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """CAS(ME)^3's released table, copied under its own name: `dataset.labels=<path>` unquoted, as a user
    types it, reads that table, and the quoted form `dvc exp run -S` needs is printed."""
    annotations = Path(os.environ.get("MER_CASME3_ANNOTATIONS", ROOT.parent / "shared/data/casme3-annotations"))
    tables = sorted(annotations.glob("*.xlsx"))
    if not tables:
        pytest.skip(f"no CAS(ME)^3 tables in {annotations}")
    for table in tables:
        shutil.copy(table, tmp_path / table.name)
    labels = tmp_path / fixtures.CASME3_TABLE
    assert "(" in labels.name and labels.is_file()
    (tmp_path / "data").mkdir()
    override = f"dataset.labels={labels}"
    code = main(
        ["check-data", "--conf", str(CONF), "dataset=casme3_4class", f"dataset.root={tmp_path / 'data'}", override]
    )
    out = capsys.readouterr().out
    assert f"check-data: dataset.labels: read as the path '{labels}'" in out
    assert f"""with dvc exp run write: -S "dataset.labels='{labels}'\"""" in out
    assert f"table {labels}" in out and "table rows resolve to frame files" in out  # the real table was read
    assert "label table not found" not in out and code == 1  # no frames under the empty root


def test_an_unreadable_override_that_is_no_path_says_how_to_quote(capsys: pytest.CaptureFixture) -> None:
    assert main(["check-data", "--conf", str(CONF), "dataset.name=casme(3"]) == 2
    err = capsys.readouterr().err
    assert "cannot compose the configuration (OverrideParseException" in err
    assert """key='value' (with dvc exp run: -S "key='value'")""" in err


def test_the_readme_casme3_form_composes_through_dvcs_own_hydra_call(tmp_path: Path) -> None:
    """`dvc exp run -S` hands each -S to Hydra (dvc.utils.hydra.compose_and_dump, what DVC runs before an
    experiment): the README's quoted form gives the path; unquoted, Hydra stops at the '('."""
    from dvc.utils.hydra import compose_and_dump
    from hydra.errors import OverrideParseException

    path = "/data/CASME3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    quoted = f"dataset.labels='{path}'"
    assert f'-S "{quoted}"' in (ROOT / "README.md").read_text()
    out = tmp_path / "params.yaml"
    compose_and_dump(out, str(CONF), None, "config", str(tmp_path), ["dataset=casme3_4class", quoted])
    assert yaml.safe_load(out.read_text())["dataset"]["labels"] == path
    with pytest.raises(OverrideParseException, match="mismatched input '\\('"):
        compose_and_dump(
            out, str(CONF), None, "config", str(tmp_path), ["dataset=casme3_4class", f"dataset.labels={path}"]
        )


def test_precomputed_inputs_are_checked_with_their_table_options(tmp_path: Path) -> None:
    """check-data passes dataset.table to the reader as ingest does (it once called the reader without it)."""
    layout = fixtures.htnet_flow(tmp_path)
    subjects = "[casme2_sub01,casme2_sub02,samm_006,samm_007,smic_s01,smic_s02]"
    result = check.check(params("megc2019_flow", layout, f"dataset.subjects={subjects}"))
    assert result.ok, [p.what for p in result.problems]
    assert result.subjects == ["casme2_sub01", "casme2_sub02", "samm_006", "samm_007", "smic_s01", "smic_s02"]
    broken = fixtures.htnet_flow(tmp_path / "broken", faults=["missing_file"])
    problems = check.check(params("megc2019_flow", broken, f"dataset.subjects={subjects}")).problems
    assert problems and "sub01_EP00_01f .png" in " ".join(f"{p.what} {p.found}" for p in problems)
