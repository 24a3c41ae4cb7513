"""Issue 2's done-when: synthesize -> ingest under real DVC, caching and selective re-runs."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest
from dvc.utils.hydra import compose_and_dump

from tests.datasets.test_releases import real_casme3_table, release_frames
from tests.workflow.conftest import PROJECT, make_repo, ran

pytestmark = pytest.mark.slow


def test_repro_caches_and_reruns_only_what_changed(built):
    repo = built  # the session's pipeline, reproduced once from synthesize (conftest.pipeline)
    manifest = pd.read_csv(repo.path / "data/manifest.csv")
    assert len(manifest) == 4 and sorted(manifest.subject.unique()) == ["sub01", "sub02"]
    report = json.loads((repo.path / "reports/ingest.json").read_text())
    assert report["per_class"] == {"happiness": 2, "surprise": 2} and report["rejected"] == []

    again = repo.dvc("repro", "ingest")
    assert ran(again.stdout) == set()
    assert "up to date" in repo.dvc("status", "ingest").stdout

    repo.set_params(**{"ingest.margin_frames": 1})
    assert ran(repo.dvc("repro", "ingest").stdout) == {"ingest"}

    repo.set_params(**{"synthesize.noise": 2.0})
    assert ran(repo.dvc("repro", "ingest").stdout) == {"synthesize@synthetic", "ingest"}
    assert "up to date" in repo.dvc("status", "ingest").stdout


def test_subject_list_mismatch_prints_the_right_list(built):
    repo = built
    repo.set_params(**{"dataset.subjects": ["sub01"]})
    failed = repo.dvc("repro", "ingest", check=False)
    assert failed.returncode != 0
    assert 'subjects: ["sub01", "sub02"]' in failed.stderr
    assert "Traceback" not in failed.stderr
    assert "changed" in repo.dvc("status", "ingest").stdout  # the failed run locked nothing


def test_real_casme3_table_ingests_from_the_released_layout(tmp_path):
    """Issue 12's done-when for CAS(ME)^3 under real DVC: the public table with frame files in the
    release's part_A/data/part_A/ nesting, the shipped config and default settings: 860 clips, 94
    folds, the published errata applied and listed, the table named with its hash."""
    table = real_casme3_table()
    repo = make_repo(tmp_path / "repo")
    shutil.copytree(PROJECT / "conf", repo.path / "conf")
    shutil.copy(PROJECT / ".dvc/config", repo.path / ".dvc/config")
    raw = repo.path / "data/raw/CASME3"
    raw.mkdir(parents=True)
    shutil.copy(table, raw / table.name)
    release_frames(table, raw / "part_A/data/part_A")
    compose_and_dump(
        repo.path / "params.yaml", str(repo.path / "conf"), None, "config", str(repo.path), ["dataset=casme3_4class"]
    )
    done = repo.dvc("repro", "ingest")
    assert "subject folders found in data/raw/CASME3/part_A/data/part_A (below dataset.root" in done.stdout
    assert (
        "ingest: 860 clips, 94 subjects, 0 rejected, 0 outside protocol 'casme3_4class'; repaired: 6 erratum"
        in done.stdout
    )
    report = json.loads((repo.path / "reports/ingest.json").read_text())
    assert report["per_class"] == {"positive": 55, "negative": 457, "surprise": 187, "others": 161}
    assert len(report["subjects"]) == 94 and report["rejected"] == []
    assert [(e["row"], e["applied"]) for e in report["errata"]] == [
        (130, True),
        (710, True),
        (751, True),
        (752, True),
        (752, True),
        (798, True),
        (800, True),
    ]
    assert report["dataset"]["labels_file"] == table.name
    assert report["dataset"]["labels_sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()
    manifest = pd.read_csv(repo.path / "data/manifest.csv", keep_default_na=False)
    assert len(manifest) == 860 and (manifest.repairs == "erratum").sum() == 6
