"""`ingest.apex_repair: spot` under real DVC: stage apex@<data set> runs after normalise, and the apex it spots
is the one crop and cache use."""

from __future__ import annotations

import json

import h5py
import openpyxl
import pytest

from mer.datasets import manifest_store
from tests.workflow.conftest import ran

pytestmark = pytest.mark.slow
APEX_COLUMN = 5  # ApexFrame in the synthetic CASME II coding sheet (1-based)


def test_spot_runs_the_apex_stage_and_crop_uses_its_apex(built):
    repo = built
    book = openpyxl.load_workbook(repo.path / "data/synthetic/CASME2-coding-synthetic.xlsx")
    book.active.cell(2, APEX_COLUMN).value = "/"  # the first row's apex, as CASME II marks a missing one
    (repo.path / "raw").mkdir()
    book.save(repo.path / "raw/coding.xlsx")
    truth = json.loads((repo.path / "data/synthetic/synthetic.json").read_text())["clips"]
    # what conf/config.yaml resolves `ingest.apex_repair=spot` to (tests/test_configs.py checks that lookup)
    repo.set_params(
        **{
            "dataset.labels": "raw/coding.xlsx",
            "ingest.apex_repair": "spot",
            "pipeline.apex": ["synthetic"],
            "pipeline.manifest": "data/manifest_apex.csv",
        }
    )
    done = repo.dvc("repro", "cache")
    assert {"ingest", "apex@synthetic", "crop@synthetic", "cache@synthetic"} <= ran(done.stdout), done.stdout

    ingested = json.loads((repo.path / "reports/ingest.json").read_text())
    (missing,) = ingested["repaired"]["apex_missing"]
    report = json.loads((repo.path / "reports/apex.json").read_text())
    assert (report["clips"], report["spotted"], report["spotted_clips"], report["labelled"]) == (4, 1, [missing], 3)
    assert report["apex_error"]["max"] <= 1 and report["middle_error"]["mean"] is not None
    assert "reports/apex.json" in repo.dvc("metrics", "show", "--json").stdout

    spotted = manifest_store.read(repo.path / "data/manifest_apex.csv").set_index("sample_id")
    middle = manifest_store.read(repo.path / "data/manifest.csv").set_index("sample_id").at[missing, "apex"]
    apex = spotted.at[missing, "apex"]
    assert abs(apex - truth[missing]["apex"]) <= 1 and apex != middle  # this clip's middle is not its apex
    with h5py.File(repo.path / "data/cache.h5", "r") as f:
        ids = [s.decode() for s in f["sample_id"][()]]
        at = ids.index(missing)
        assert f["apex_frames"][at][f["apex_position"][at]] == apex  # the cache's apex is the spotted one
    assert "up to date" in repo.dvc("status", "cache").stdout
