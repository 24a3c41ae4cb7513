"""SMIC HS in its released layout: labels from the emotion folders, the apex from the rule."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from mer.datasets import smic
from mer.datasets.ingest import ingest
from mer.datasets.keyframes import Repair
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from tests.datasets import fixtures

ROOT = Path(__file__).resolve().parents[2]


def test_reads_every_clip_folder_with_the_middle_apex(tmp_path: Path) -> None:
    layout = fixtures.smic(tmp_path)
    result = smic.read(*layout.paths, margin=2)
    assert result.data_root == str(layout.root / "SMIC_all_raw" / "HS") and result.rejected == []
    assert len(result.clips) == 164 and result.subjects == set(fixtures.SMIC_SUBJECTS)
    assert Counter(c.emotion for c in result.clips) == fixtures.SMIC_COUNTS
    clip = next(c for c in result.clips if c.sample_id == "s1/s1_po_01")
    assert (clip.onset, clip.apex, clip.offset, clip.repairs) == (1000, 1004, 1009, ("apex_missing",))
    assert clip.frame_numbers == list(range(1000, 1010))
    assert clip.frames[0] == str(layout.root / "SMIC_all_raw/HS/s1/micro/positive/s1_po_01/image001000.bmp")


def test_the_shipped_config_ingests_the_release(tmp_path: Path) -> None:
    layout = fixtures.smic(tmp_path)
    config = yaml.safe_load((ROOT / "conf/dataset/smic_3class.yaml").read_text())["dataset"]
    protocols = yaml.safe_load((ROOT / "conf/config.yaml").read_text())["protocols"]
    report = ingest(
        "smic", *layout.paths, Protocol.from_params(config["protocol"], protocols), expected_subjects=config["subjects"]
    ).report
    assert report["clips"] == 164 and report["subjects"] == fixtures.SMIC_SUBJECTS
    assert report["per_class"] == fixtures.SMIC_COUNTS and report["repairs"]["apex_missing"] == 164


def test_empty_clip_folder_is_rejected_with_its_path(tmp_path: Path) -> None:
    layout = fixtures.smic(tmp_path, {"empty_clip"})
    result = smic.read(*layout.paths)
    folder = layout.root / "SMIC_all_raw/HS/s1/micro/positive/s1_po_01"
    assert [(r.source, r.sample_id, r.reason) for r in result.rejected] == [
        (str(folder), "s1/s1_po_01", f"no frame files named image<n>.bmp in {folder}")
    ]
    strict = smic.read(*fixtures.smic(tmp_path / "b").paths, repair=Repair(apex_missing="reject"))
    assert strict.clips == [] and {r.reason for r in strict.rejected} == {"apex not labelled ('/')"}


def test_wrong_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"no SMIC subject folders \(s1, s2, ...\) found here or up to 3 levels"):
        smic.read(tmp_path, tmp_path)
