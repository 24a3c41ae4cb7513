"""Issue 2's done-when: synthesize -> ingest under real DVC, caching and selective re-runs."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.workflow.conftest import ran

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
    assert ran(repo.dvc("repro", "ingest").stdout) == {"synthesize", "ingest"}
    assert "up to date" in repo.dvc("status", "ingest").stdout


def test_subject_list_mismatch_prints_the_right_list(built):
    repo = built
    repo.set_params(**{"dataset.subjects": ["sub01"]})
    failed = repo.dvc("repro", "ingest", check=False)
    assert failed.returncode != 0
    assert "subjects: [\"sub01\", \"sub02\"]" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert "changed" in repo.dvc("status", "ingest").stdout  # the failed run locked nothing
