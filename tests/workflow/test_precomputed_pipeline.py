"""Issue 24's done-when under real DVC: `dvc exp run -S dataset=megc2019_flow -S dataset.root=... -S
dataset.labels=... -S model=ststnet` on a generated set in HTNet's published layout (outside the repository),
shrunk in epochs: ingest, precomputed, every fold and the report, no face stage, the composite and per-part
figures beside the published rows; then `-S model=off_apexnet` the same way."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from tests.datasets.fixtures import htnet_flow
from tests.workflow.conftest import ran
from tests.workflow.test_configs_pipeline import _commit, _configured_repo

pytestmark = pytest.mark.slow

SUBJECTS = "[casme2_sub01,samm_006,smic_s01]"  # one per part: every part is a held-out fold


def test_megc2019_flow_runs_every_fold_and_the_report_without_face_stages(tmp_path):
    layout = htnet_flow(tmp_path / "HTNet", clips_per_subject=6, subjects_per_part=1)
    repo = _configured_repo(tmp_path / "repo")
    _commit(repo)
    common = [
        "dataset=megc2019_flow",
        f"dataset.root={layout.root}",
        f"dataset.labels={layout.labels}",
        f"dataset.subjects={SUBJECTS}",
        "train.epochs=3",
        "train.seeds=[7]",
    ]
    done = repo.dvc("exp", "run", *(f"-S{s}" for s in [*common, "model=ststnet"]))
    folds = {f"train@{s}-7" for s in SUBJECTS.strip("[]").split(",")}
    assert ran(done.stdout) == {"ingest", "precomputed@megc2019_flow", *folds, "report"}, done.stdout
    stages = set(repo.dvc("stage", "list", "--name-only").stdout.split())
    assert not {s for s in stages if s.split("@")[0] in ("synthesize", "landmarks", "crop", "cache", "flow")}

    ingest = json.loads((repo.path / "reports/ingest.json").read_text())
    assert ingest["clips"] == 18 and ingest["per_dataset"] == {"casme2": 6, "samm": 6, "smic": 6}
    cache = json.loads((repo.path / "reports/cache.json").read_text())
    assert cache["inputs"]["shape"] == [3, 28, 28] and cache["lost"] == {}
    metrics = json.loads((repo.path / "reports/metrics.json").read_text())
    predictions = pd.read_csv(repo.path / "reports/predictions.csv")
    assert len(predictions) == 18 and set(metrics["per_dataset"]) == {"casme2", "samm", "smic"}
    present = sorted(set(predictions.label))
    uf1 = f1_score(predictions.label, predictions.pred, labels=present, average="macro", zero_division=0)
    assert metrics["uf1"]["mean"] == pytest.approx(uf1)
    curves = json.loads((repo.path / "reports/folds/seed7/samm_006/curves.json").read_text())
    assert (curves["model"]["name"], curves["input"]["kind"], curves["train"]["optimizer"]) == (
        "ststnet",
        "precomputed",
        "adam",
    )
    page = (repo.path / "reports/README.md").read_text()
    assert "| MEGC 2019 summary (See et al. 2019) | LOSO, as the STSTNet authors ran it | 0.7353 | 0.7605 |" in page
    assert "ingest rejected 0); 0 clip(s) had labels outside the protocol" in page

    other = repo.dvc("exp", "run", *(f"-S{s}" for s in [*common, "model=off_apexnet"]))
    assert ran(other.stdout) == {*folds, "report"}  # the cache is the same: only the folds and the report
    curves = json.loads((repo.path / "reports/folds/seed7/samm_006/curves.json").read_text())
    assert (curves["model"]["name"], curves["train"]["lr"]) == ("off_apexnet", 1e-4)


def test_a_bad_row_stops_ingest_naming_row_and_file(tmp_path):
    layout = htnet_flow(tmp_path / "HTNet", faults=["missing_file"], subjects_per_part=1)
    repo = _configured_repo(tmp_path / "repo")
    _commit(repo)
    failed = repo.dvc(
        "exp",
        "run",
        "-Sdataset=megc2019_flow",
        f"-Sdataset.root={layout.root}",
        f"-Sdataset.labels={layout.labels}",
        f"-Sdataset.subjects={SUBJECTS}",  # the fixture's: the shipped 68 would make ~200 fold stages to set up
        check=False,
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert f"{layout.labels}:row 2 (casme2/sub01/EP00_01f): file {layout.root}/sub01_EP00_01f .png not found" in (
        failed.stdout + failed.stderr
    )
