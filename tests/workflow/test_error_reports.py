"""A failed stage's reasons outlive it: DVC deletes the stage's outputs, reports/errors/ keeps the list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_failing_ingest_leaves_its_rejection_list_and_root_faults_name_the_param(repo):
    repo.dvc("repro", "ingest")
    first = pd.read_csv(repo.path / "data/manifest.csv").iloc[0]
    params = repo.params()["dataset"]
    bad = repo.path / "data/raw/bad"
    shutil.copytree(repo.path / params["root"], bad)
    onset_frame = next(f for f in first.frames.split(";") if Path(f).stem == f"img{first.onset}")
    (bad / Path(onset_frame).relative_to(params["root"])).unlink()
    repo.set_params(**{"dataset.root": "data/raw/bad"})

    failed = repo.dvc("repro", "ingest", check=False)
    assert failed.returncode != 0 and "Full list: reports/errors/ingest.json" in failed.stderr
    assert not (repo.path / "reports/ingest.json").exists()  # DVC removed the stage's own report
    report = json.loads((repo.path / "reports/errors/ingest.json").read_text())
    assert report["count"] == 1 and report["items"][0]["sample_id"] == first.sample_id
    assert f"onset frame {first.onset}" in report["items"][0]["reason"]

    (repo.path / "data/raw/empty").mkdir()
    repo.set_params(**{"dataset.root": "data/raw/empty"})
    empty = repo.dvc("repro", "ingest", check=False)
    assert "dataset.root is 'data/raw/empty': the folder holds no frame folders" in empty.stderr
    assert "frame folder missing" not in empty.stderr

    repo.set_params(**{"dataset.root": "data/raw/nowhere"})  # (dvc repro itself stops first: a missing dep)
    missing = repo.run(
        "python", "stages/ingest.py", "--manifest", "data/manifest.csv", "--report", "reports/ingest.json", check=False
    )
    assert "ingest: dataset.root is 'data/raw/nowhere': no such folder" in missing.stderr

    repo.set_params(**{"dataset.root": params["root"]})
    repo.dvc("repro", "ingest")
    assert not (repo.path / "reports/errors/ingest.json").exists()  # success clears the stale report
