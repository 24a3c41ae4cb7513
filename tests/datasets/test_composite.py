"""Composite data sets: ingested parts joined under one protocol, fold units by subject or by data set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mer.datasets import composite, manifest
from mer.datasets.ingest import ingest
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from mer.io import write_json
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
        result = ingest(fmt, *layout.paths, Protocol.from_params(protocol, PROTOCOLS))
        manifest.write(root / part / composite.PART_MANIFEST, result.clips, Protocol.from_params(protocol, PROTOCOLS))
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
    assert list(table.columns) == [*manifest.COLUMNS, "dataset"]
    assert len(report["repaired"]["apex_missing"]) == 164 and report["repaired"]["apex_missing"][0].startswith("smic/")


def test_fold_lists_are_checked_with_the_fix(tmp_path):
    root = _parts(tmp_path)
    with pytest.raises(IngestError, match=r"subjects: \[casme2_sub01, casme2_sub02, casme2_sub10, smic_s1,"):
        composite.join(root, ["casme2", "smic"], MEGC, "subject", ["casme2_sub01"])
    table, report = composite.join(root, ["casme2", "smic"], MEGC, "dataset", ["smic"])
    assert report["subjects"] == ["casme2", "smic"] and set(table.subject) == {"casme2", "smic"}
    with pytest.raises(IngestError, match=r"\['samm'\] is not a part with clips \(\['casme2', 'smic'\]\)"):
        composite.join(root, ["casme2", "smic"], MEGC, "dataset", ["samm"])
    with pytest.raises(IngestError, match="written by the stage ingest_part@samm"):
        composite.join(root, ["casme2", "samm"], MEGC, "subject", [])
    with pytest.raises(IngestError, match="dataset.folds must be one of"):
        composite.join(root, ["casme2"], MEGC, "clip", [])
