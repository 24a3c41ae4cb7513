"""Composite data sets: ingested parts joined under one protocol, fold units by subject or by data set."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from mer.datasets import composite, manifest_store, megc2019, samples
from mer.datasets.ingest import RowsRejected, ingest
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from mer.io import write_json
from mer.report import readme
from tests.datasets import fixtures

PROTOCOLS = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())["protocols"]
MEGC = Protocol.from_params("megc2019_3class", PROTOCOLS)


def _parts(tmp_path: Path) -> Path:
    """CASME II (fixture: 5 clips, fear dropped by MEGC's CASME II protocol) and SMIC HS ingested as parts."""
    root = tmp_path / "parts"
    for part, layout, fmt, protocol in (
        ("casme2", fixtures.casme2(tmp_path / "c"), "casme2", "casme2_3class_megc"),
        ("smic", fixtures.smic(tmp_path / "s"), "smic", "smic_3class"),
    ):
        labels = Protocol.from_params(protocol, PROTOCOLS)
        result = ingest(fmt, *layout.paths, labels)
        manifest_store.write(root / part / composite.PART_MANIFEST, manifest_store.table(result.clips, labels))
        write_json(root / part / composite.PART_REPORT, {"dataset": {"name": part}, **result.report})
    return root


def test_join_prefixes_ids_maps_classes_and_reports_each_part(tmp_path):
    root = _parts(tmp_path)
    subjects = ["casme2_sub01", "casme2_sub02", "casme2_sub10", *(f"smic_{s}" for s in fixtures.SMIC_SUBJECTS)]
    table, report = composite.join(root, ["casme2", "smic"], MEGC, "subject", subjects)
    assert report["per_dataset"] == {"casme2": 4, "smic": 164} and report["clips"] == 168
    assert report["dropped_by_protocol"] == {"casme2:fear": 1}
    assert report["per_class"] == {"negative": 2 + 70, "positive": 1 + 51, "surprise": 1 + 43}
    row = table.set_index("sample_id").loc["casme2/sub01/EP03_02"]
    assert (row.subject, row.label, row.label_index, row.dataset) == ("casme2_sub01", "negative", 0, "casme2")
    assert list(table.columns) == [*manifest_store.COLUMNS, "dataset"]
    assert len(report["repaired"]["apex_missing"]) == 164 and report["repaired"]["apex_missing"][0].startswith("smic/")


def test_fold_lists_are_checked_with_the_fix(tmp_path):
    root = _parts(tmp_path)
    with pytest.raises(IngestError, match=r'subjects: \["casme2_sub01", "casme2_sub02", "casme2_sub10", "smic_s1",'):
        composite.join(root, ["casme2", "smic"], MEGC, "subject", ["casme2_sub01"])
    table, report = composite.join(root, ["casme2", "smic"], MEGC, "dataset", ["smic"])
    assert report["subjects"] == ["casme2", "smic"] and set(table.subject) == {"casme2", "smic"}
    with pytest.raises(IngestError, match=r"\['samm'\] is not a part with clips \(\['casme2', 'smic'\]\)"):
        composite.join(root, ["casme2", "smic"], MEGC, "dataset", ["samm"])
    with pytest.raises(IngestError, match="written by the stage ingest_part@samm"):
        composite.join(root, ["casme2", "samm"], MEGC, "subject", [])
    with pytest.raises(IngestError, match="dataset.folds must be one of"):
        composite.join(root, ["casme2"], MEGC, "clip", [])


# ---------------------------------------------------------------- MEGC 2019 as published

ROOT = Path(__file__).resolve().parents[2]
MEGC_CONFIG = yaml.safe_load((ROOT / "conf/dataset/megc2019.yaml").read_text())["dataset"]
PUBLISHED = Protocol.from_params(MEGC_CONFIG["protocol"], PROTOCOLS)
CODED_2019 = "surprise in the 2019 coding table only; the published list follows the 2014 table"
BY_ORGANISERS = "disgust in both coding tables, yet left out of the published list"


def _megc_parts(
    tmp_path: Path, casme2_table: str = "2014", on_error: str = "fail", change: Callable | None = None
) -> tuple[Path, dict[str, fixtures.Layout]]:
    """MEGC 2019's parts in their releases' layouts, each ingested as ingest_part@<part> does (shipped config)."""
    layouts = fixtures.megc2019_release(tmp_path / "raw", casme2_table)
    if change is not None:
        change(layouts)
    root = tmp_path / "parts"
    for part, spec in MEGC_CONFIG["parts"].items():
        protocol = Protocol.from_params(spec["protocol"], PROTOCOLS)
        result = ingest(spec["format"], *layouts[part].paths, protocol, on_error=on_error)
        manifest_store.write(root / part / composite.PART_MANIFEST, manifest_store.table(result.clips, protocol))
        described = {"name": part, "labels_file": layouts[part].labels.name, "labels_sha256": None}
        write_json(root / part / composite.PART_REPORT, {"dataset": described, "on_error": on_error, **result.report})
    return root, layouts


def _join(root: Path) -> tuple[pd.DataFrame, dict]:
    return composite.join(root, list(MEGC_CONFIG["parts"]), PUBLISHED, "subject", MEGC_CONFIG["subjects"])


def _published_ids() -> dict[str, str]:
    """The list's clips as `<part>/<subject>/<clip>` in the releases' naming -> published class."""
    ids = {}
    for part, sub, clip, label in fixtures.megc2019_listed():
        if part == "smic":  # HTNet writes s01, s01_ne_01 for SMIC HS's s1/s1_ne_01
            sub, clip = f"s{int(sub[1:])}", f"s{int(sub[1:])}{clip[len(sub) :]}"
        ids[f"{part}/{sub}/{clip}"] = label
    return ids


@pytest.mark.parametrize("version", ["2014", "2019"])
def test_megc2019_keeps_exactly_the_published_clips_from_either_casme2_table(tmp_path, version):
    root, layouts = _megc_parts(tmp_path, version)
    casme2_report = json.loads((root / "casme2" / composite.PART_REPORT).read_text())
    assert casme2_report["clips"] == {"2014": 147, "2019": 150}[version]  # what the raw table gives on its own
    assert casme2_report["table_version"] == version
    table, report = _join(root)

    assert dict(zip(table.sample_id, table.label, strict=True)) == _published_ids()
    assert report["clips"] == 442 and report["per_dataset"] == {"casme2": 145, "samm": 133, "smic": 164}
    counts = table.groupby(["dataset", "label"]).size()
    assert {part: counts[part].to_dict() for part in fixtures.MEGC2019_COUNTS} == fixtures.MEGC2019_COUNTS
    assert report["subjects"] == MEGC_CONFIG["subjects"] and len(report["subjects"]) == 68
    assert report["parts"]["casme2"]["table_version"] == version

    listed = report["samples"]
    assert (listed["name"], listed["clips"], listed["faults"]) == ("megc2019", 442, [])
    assert listed["sha256"] == hashlib.sha256(megc2019.CSV.encode()).hexdigest()
    assert "HTNet" in listed["source"] and "combined_3_class2_for_optical_flow.csv" in listed["source"]
    rows = layouts["casme2"].rows
    expected = [
        ("casme2/sub04/EP12_01f", "disgust", BY_ORGANISERS),
        ("casme2/sub05/EP09_05f", "disgust", BY_ORGANISERS),
    ]
    if version == "2019":
        expected += [(f"casme2/{key}", "surprise", CODED_2019) for key in fixtures.CASME2_SURPRISE_2019]
    assert [(c["sample_id"], c["label"]) for c in listed["left_out"]] == [(i, label) for i, label, _ in expected]
    for clip, (sample_id, label, why) in zip(listed["left_out"], expected, strict=True):
        assert clip["source"] == f"{layouts['casme2'].labels}:row {rows[sample_id.removeprefix('casme2/')]}"
        given = "surprise" if label == "surprise" else "negative"
        assert clip["reason"] == (
            f"not in the published list ({label}: {given} under casme2_3class_megc, {version} table layout); {why}"
        )
        assert clip["reason_source"].startswith("issue 24: the real CASME II coding tables")

    lines = readme.data_lines({**report, "errata": []})
    assert f"- casme2: label table `{layouts['casme2'].labels.name}` ({version} table layout), SHA-256 `no table" in (
        "\n".join(lines)
    )
    summary = next(line for line in lines if line.startswith("- sample list "))
    assert summary.endswith(
        f": 442 of its 442 clips kept, {len(expected)} clip(s) of the tables left out, "
        "0 listed clip(s) missing or labelled otherwise"
    )
    assert (
        "  - left out casme2/sub05/EP09_05f (disgust): not in the published list (disgust: negative under "
        f"casme2_3class_megc, {version} table layout); {BY_ORGANISERS}"
    ) in lines


def _drop_smic_clip(layouts: dict[str, fixtures.Layout]) -> None:
    shutil.rmtree(layouts["smic"].root / "SMIC_all_raw/HS/s3/micro/negative/s3_ne_01")


def _relabel_casme2(emotion: str) -> Callable:
    def change(layouts: dict[str, fixtures.Layout]) -> None:
        layout = layouts["casme2"]
        book = openpyxl.load_workbook(layout.labels)
        book.active[f"I{layout.rows['sub01/EP02_01f']}"] = emotion  # listed as positive (happiness)
        book.save(layout.labels)

    return change


def _list_row(part: str, sub: str, clip: str) -> int:
    return 2 + fixtures.megc2019_listed().index(
        next(r for r in fixtures.megc2019_listed() if r[:3] == (part, sub, clip))
    )


@pytest.mark.parametrize(
    "change,sample_id,reason",
    [
        (
            _drop_smic_clip,
            "smic/s3/s3_ne_01",
            "listed, but ingest_part@smic read no such clip (table and folders under ",
        ),
        (
            _relabel_casme2("surprise"),
            "casme2/sub01/EP02_01f",
            "listed as positive, but {table}:row 2 labels it surprise: surprise under casme2_3class_megc",
        ),
        (
            _relabel_casme2("fear"),
            "casme2/sub01/EP02_01f",
            "listed, but {table}:row 2 labels it fear, outside casme2_3class_megc",
        ),
    ],
)
def test_a_listed_clip_missing_or_labelled_otherwise_stops_ingest_unless_skipped(tmp_path, change, sample_id, reason):
    root, layouts = _megc_parts(tmp_path / "fail", change=change)
    part, sub, clip = sample_id.split("/")
    listed = "smic", "s03", "s03_ne_01"
    where = f"sample list megc2019:row {_list_row(*(listed if part == 'smic' else (part, sub, clip)))}"
    message = f"{where} ({sample_id}): {reason.format(table=layouts['casme2'].labels)}"
    with pytest.raises(RowsRejected) as err:
        _join(root)
    assert str(err.value).startswith("1 clip(s) of the published sample list not found as listed")
    [rejected] = err.value.rejected  # the stage's error report lists them all
    assert message in str(err.value) and str(rejected).startswith(message)

    root, layouts = _megc_parts(tmp_path / "skip", on_error="skip", change=change)
    table, report = _join(root)
    assert report["clips"] == 441 and sample_id not in set(table.sample_id)
    [fault] = report["samples"]["faults"]
    assert f"{fault['source']} ({fault['sample_id']}): {fault['reason']}".startswith(
        message.replace(str(tmp_path / "fail"), str(tmp_path / "skip"))
    )
    assert f"  - skipped {sample_id}: " in "\n".join(readme.data_lines({**report, "errata": []}))


@pytest.mark.parametrize(
    "rows,message",
    [
        (
            [["casme2", "sub01", "EP02_01f", "1"], ["casme2", "sub01", "EP02_01f", "0"]],
            "row 3: casme2/sub01/EP02_01f is listed twice (first at row 2)",
        ),
        ([["casme2", "sub01", "EP02_01f", "3"]], "row 2: label '3' is not a class index 0..2 of"),
        ([["smic", "", "s01_ne_01", "0"]], "row 2: dataset, sub and filename_o must all be set"),
    ],
)
def test_a_faulty_sample_list_is_named_by_row(rows, message):
    text = "\n".join(",".join(r) for r in [["dataset", "sub", "filename_o", "label"], *rows]) + "\n"
    with pytest.raises(IngestError, match=re.escape(f"sample list mine:{message}")):
        samples.read("mine", text, PUBLISHED.classes)
    with pytest.raises(IngestError, match="unknown sample list 'mine' .*; known: megc2019"):
        samples.load("mine", PUBLISHED.classes)


def test_the_shipped_list_is_megc2019_as_published():
    """The published counts per part and class (See et al. 2019), SMIC's names as the release's folders."""
    listed = samples.load("megc2019", PUBLISHED.classes)
    counts = Counter((part, label) for (part, _), label in listed.labels.items())
    assert {
        p: {c: counts[p, c] for c in PUBLISHED.classes} for p in fixtures.MEGC2019_COUNTS
    } == fixtures.MEGC2019_COUNTS
    assert ("smic", "s1/s1_ne_01") in listed.labels and ("samm", "006/006_1_2") in listed.labels
    assert {f"{part}_{sample.split('/')[0]}" for part, sample in listed.labels} == set(MEGC_CONFIG["subjects"])
