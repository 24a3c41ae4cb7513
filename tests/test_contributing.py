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
from tests.test_dvc_deps import _pipeline, problems

ROOT = Path(__file__).resolve().parents[1]
FORMAT = "toyformat"
MODULE = ROOT / "mer" / "datasets" / f"{FORMAT}.py"

# step 1: the reader, built on records.read_rows as the page says
READER = '''"""A toy format: <subject>/<clip>/f<n>.png frames and a CSV table (from tests/test_contributing.py)."""

from __future__ import annotations

import re
from pathlib import Path

from mer.datasets import frames
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair, row_key_frames
from mer.datasets.records import Clip, ReadResult, Row, read_rows, selected_clip
from mer.datasets.tables import cell_text, column, load_table

FRAME = re.compile(r"f(\\d+)\\.png")


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    root, labels = Path(root), Path(labels)
    table = load_table(labels)
    cols = {name: column(table, labels, name) for name in ("subject", "clip", "onset", "apex", "offset", "emotion")}

    def read_row(row: Row, result: ReadResult) -> Clip:
        subject, clip = cell_text(row.cells[cols["subject"]]), cell_text(row.cells[cols["clip"]])
        row.sample_id = f"{subject}/{clip}"
        result.subjects.add(subject)
        keys = row_key_frames(row.cells, cols, repair)
        color = frames.list_frames(frames.inside(root, subject, clip), FRAME)
        sel = frames.select(color, keys.onset, keys.apex, keys.offset, margin, where=str(root / subject / clip),
                            clamp_offset="offset_invalid" in keys.repairs)
        return selected_clip(row, subject, clip, cell_text(row.cells[cols["emotion"]]), sel, color, keys.repairs)

    return read_rows(table, labels, read_row)
'''


@pytest.fixture
def toy_reader(monkeypatch):
    """Steps 1 and 2: the module in mer/datasets and the format registered (both undone afterwards)."""
    assert not MODULE.exists(), f"{MODULE} exists: a reader of that name would be overwritten"
    MODULE.write_text(READER)
    deps.closure.cache_clear()  # import closures are cached per stage script: recompute with the new reader
    monkeypatch.setattr(ingest, "FORMATS", (*ingest.FORMATS, FORMAT))
    monkeypatch.setitem(check.FOLDERS, FORMAT, ("<subject>", "f<n>.png"))
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
    # step 4: its protocol (as data; conf/ holds the shipped ones)
    protocol = Protocol.from_params(
        "toy", {"toy": {"classes": ["happy", "sad"], "map": {"happy": "happy", "sad": "sad"}}}
    )
    result = ingest.ingest(FORMAT, tmp_path / "data", labels, protocol, on_error="skip")
    assert [c.sample_id for c in result.clips] == ["s1/a", "s1/b", "s2/c"]
    repaired = next(c for c in result.clips if c.sample_id == "s1/b")
    assert "offset_invalid" in repaired.repairs and repaired.offset == 9  # mirrored: apex + (apex - onset)
    assert [r["sample_id"] for r in result.report["rejected"]] == ["s2/gone"]
    assert "frame folder missing" in result.report["rejected"][0]["reason"]

    # step 3: until `mer deps --write` lists the module in dvc.yaml, the deps test names the line it adds
    found = problems(_pipeline())
    reader = f"add `- mer/datasets/{FORMAT}.py` (imported by mer/datasets/ingest.py (dynamic))"
    assert f"stage 'ingest': {reader}" in found and f"stage 'ingest_part': {reader}" in found
