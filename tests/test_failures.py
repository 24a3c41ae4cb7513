"""Failure reports that outlive a failed stage, dropped rows named, the data root named as its param."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mer import dataset_root, failures
from mer.datasets.ingest import RowsRejected, ingest
from mer.datasets.keyframes import Repair
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from tests.datasets import fixtures

CASME2_5 = Protocol(
    "casme2_5class",
    ("happiness", "disgust", "repression", "surprise", "others"),
    {e: e for e in ("happiness", "disgust", "repression", "surprise", "others")},
)


def test_a_failing_check_writes_every_failure_outside_the_stage_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failed = [failures.ClipFailure(f"sub01/c{n}", "crop", f"frame {n} is blank") for n in range(60)]
    with pytest.raises(failures.ClipError) as err:
        failures.check(failed, "fail", "crop")
    message = str(err.value)
    assert message.count("\n  sub01/c") == 50 and "... and 10 more" in message
    assert message.endswith("Full list: reports/errors/crop.json")
    report = json.loads((tmp_path / "reports/errors/crop.json").read_text())
    assert report["stage"] == "crop" and report["count"] == 60
    assert report["items"][59] == {"sample_id": "sub01/c59", "stage": "crop", "reason": "frame 59 is blank"}
    failures.check(failed, "skip", "crop")  # the stage goes on: the stale error report goes
    assert not (tmp_path / "reports/errors/crop.json").exists()


def test_rejected_rows_travel_with_the_error(tmp_path):
    layout = fixtures.casme2(tmp_path, {"offset_before_onset", "escaping_filename"})
    with pytest.raises(RowsRejected) as err:
        ingest(
            "casme2", layout.root, layout.labels, CASME2_5, on_error="fail", repair=Repair(offset_invalid="reject")
        )  # by default the offset is repaired, not rejected
    assert [(r.sample_id, r.source) for r in err.value.rejected] == [
        ("sub01/bad_offset", f"{layout.labels}:row 7"),
        ("sub01/../x", f"{layout.labels}:row 8"),
    ]


def test_rows_outside_the_protocol_are_named(tmp_path):
    layout = fixtures.casme2(tmp_path)
    report = ingest("casme2", layout.root, layout.labels, CASME2_5, on_error="fail").report
    assert report["dropped_by_protocol"] == {"fear": 1}
    assert report["dropped"] == [{"source": f"{layout.labels}:row 5", "sample_id": "sub02/EP05_03", "label": "fear"}]


def test_missing_or_empty_root_is_named_as_the_param(tmp_path):
    labels = tmp_path / "labels.xlsx"
    labels.write_bytes(b"x")
    with pytest.raises(IngestError, match=r"^dataset.root is '.*nowhere': no such folder; set it in"):
        dataset_root.check(tmp_path / "nowhere", labels)
    with pytest.raises(IngestError, match=r"^dataset.root is '.*labels.xlsx': a file, not a folder"):
        dataset_root.check(labels, labels)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"")
    with pytest.raises(IngestError, match=r"^dataset.root is '.*empty': the folder holds no frame folders"):
        dataset_root.check(empty, labels)
    (empty / "sub01").mkdir()
    dataset_root.check(empty, labels)
    with pytest.raises(IngestError, match=r"^dataset.labels is '.*missing.xlsx': no such file; set it in"):
        dataset_root.check(empty, tmp_path / "missing.xlsx")


def test_real_layout_passes_the_root_check(tmp_path: Path):
    layout = fixtures.casme2(tmp_path)
    dataset_root.check(layout.root, layout.labels)
