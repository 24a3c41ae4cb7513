"""CONTRIBUTING.md's "Add a data-set reader", followed step by step with a toy format.

If a step the page names stops being enough (or the names it gives move), this test fails,
so the page and the code cannot drift apart.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mer import deps
from mer.datasets import check, ingest
from mer.datasets.protocols import Protocol
from mer.io import load_params
from tests.test_dvc_deps import _pipeline, problems

ROOT = Path(__file__).resolve().parents[1]
FORMAT = "toyformat"
MODULE = ROOT / "mer" / "datasets" / f"{FORMAT}.py"

# step 1: the reader, declaring its SPEC and built on mer.datasets.coding as the page says
READER = '''"""A toy format: <subject>/<clip>/f<n>.png frames and a CSV table (from tests/test_contributing.py)."""

from __future__ import annotations

import re
from pathlib import Path

from mer.datasets.coding import open_table, read_clip_folders
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import ReadResult
from mer.datasets.tables import cell_text

SPEC = ReaderSpec(
    format="toyformat",
    folders="<subject>/<clip>, subject as the table names it",
    frames="f<n>.png",
    labels=frozenset({"happy", "sad"}),
    columns={role: (role,) for role in ("subject", "clip", "onset", "apex", "offset", "emotion")},
)
FRAME = re.compile(r"f(\\d+)\\.png")


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    coding = open_table(SPEC, root, labels, repair)
    return read_clip_folders(
        coding, repair, margin, cell_text, top=lambda subject, _: subject, pattern=lambda _: FRAME, required=("clip",)
    )
'''


@pytest.fixture
def toy_reader():
    """Step 1: the module in mer/datasets, and nothing else: the registry finds it by its SPEC (undone afterwards)."""
    assert not MODULE.exists(), f"{MODULE} exists: a reader of that name would be overwritten"
    MODULE.write_text(READER)
    deps.closure.cache_clear()  # import closures are cached per stage script: recompute with the new reader
    try:
        yield importlib.import_module(f"mer.datasets.{FORMAT}")
    finally:
        MODULE.unlink()
        sys.modules.pop(f"mer.datasets.{FORMAT}", None)
        deps.closure.cache_clear()


def toy_data(root: Path) -> Path:
    """Two subjects, three clips; one offset before its onset (a repair rule fixes it), one folder missing."""
    rows = [
        ("s1", "a", 2, 5, 9, "happy"),
        ("s1", "b", 3, 6, 1, "sad"),
        ("s2", "c", 2, 4, 8, "happy"),
        ("s2", "gone", 2, 4, 8, "sad"),
    ]
    image = np.full((32, 32, 3), 128, np.uint8)
    for subject, clip, *_ in rows[:3]:
        (root / subject / clip).mkdir(parents=True)
        for n in range(1, 13):
            cv2.imwrite(str(root / subject / clip / f"f{n}.png"), image)
    labels = root / "labels.csv"
    pd.DataFrame(rows, columns=["subject", "clip", "onset", "apex", "offset", "emotion"]).to_csv(labels, index=False)
    return labels


def test_a_reader_added_as_the_page_says_ingests_and_is_checked(toy_reader, tmp_path):
    labels = toy_data(tmp_path / "data")
    # step 3: its protocol (as data; conf/ holds the shipped ones)
    protocol = Protocol.from_params(
        "toy", {"toy": {"classes": ["happy", "sad"], "map": {"happy": "happy", "sad": "sad"}}}
    )
    result = ingest.ingest(FORMAT, tmp_path / "data", labels, protocol, on_error="skip")
    assert [c.sample_id for c in result.clips] == ["s1/a", "s1/b", "s2/c"]
    repaired = next(c for c in result.clips if c.sample_id == "s1/b")
    assert "offset_invalid" in repaired.repairs and repaired.offset == 9  # mirrored: apex + (apex - onset)
    assert [r["sample_id"] for r in result.report["rejected"]] == ["s2/gone"]
    assert "frame folder missing" in result.report["rejected"][0]["reason"]
    assert FORMAT in ingest.FORMATS and ingest.reader_module(FORMAT) == toy_reader.__name__

    # check-data knows it too, and explains a wrong layout with the naming its SPEC gives
    params = load_params(ROOT / "params.yaml")
    params["protocols"]["toy"] = {"classes": ["happy", "sad"], "map": {"happy": "happy", "sad": "sad"}}
    params["dataset"] = {
        "name": "toy",
        "format": FORMAT,
        "root": str(tmp_path / "data"),
        "labels": str(labels),
        "protocol": "toy",
        "subjects": ["s1", "s2"],
    }
    problem = check.check(params).problems[0]
    assert problem.what == "subject folder naming" and problem.expected == toy_reader.SPEC.folders

    # step 2: until `mer deps --write` lists the module in dvc.yaml, the deps test names the line it adds
    found = problems(_pipeline())
    reader = f"add `- mer/datasets/{FORMAT}.py` (imported by mer/datasets/ingest.py (dynamic))"
    assert f"stage 'ingest': {reader}" in found and f"stage 'ingest_part': {reader}" in found
