"""Issue 3's done-when: synthesize -> ... -> cache under real DVC, with a bad clip skipped or fatal."""

from __future__ import annotations

import json
import shutil

import pytest

from mer.cache_store import Cache
from tests.workflow.conftest import ran

pytestmark = pytest.mark.slow


def test_preprocessing_end_to_end_and_selective_reruns(built):
    repo = built  # reproduced once from synthesize (conftest.pipeline)
    cache = Cache(repo.path / "data/cache.h5")
    assert len(cache) == 4 and cache.load("onset").shape == (4, 4, 224, 224, 3)
    assert sorted(set(cache.subjects)) == ["sub01", "sub02"]
    for name in ("landmarks.png", "normalise.png", "crop.png"):
        assert (repo.path / "reports" / name).stat().st_size > 10_000

    repo.set_params(**{"crop.size": 112})
    assert ran(repo.dvc("repro", "cache").stdout) == {"crop@synthetic", "cache@synthetic"}
    assert Cache(repo.path / "data/cache.h5").load("apex", [0]).shape == (1, 4, 112, 112, 3)
    repo.set_params(**{"normalise.neighbours": 16})
    assert ran(repo.dvc("repro", "cache").stdout) == {"normalise@synthetic", "crop@synthetic", "cache@synthetic"}
    assert "up to date" in repo.dvc("status", "cache").stdout


def test_a_corrupt_first_frame_is_skipped_and_reported_or_fatal(built):
    """A user's own data set (outside DVC's outputs) with one corrupt JPEG."""
    repo = built
    shutil.copytree(repo.path / "data/synthetic", repo.path / "raw")
    repo.set_params(**{"dataset.root": "raw/CASME2_RAW_selected", "dataset.labels": "raw/CASME2-coding-synthetic.xlsx"})
    truth = json.loads((repo.path / "raw/synthetic.json").read_text())
    sample_id, info = sorted(truth["clips"].items())[0]
    frame = repo.path / "raw/CASME2_RAW_selected" / sample_id / f"img{info['first_frame']}.jpg"
    frame.write_bytes(b"\xff\xd8 broken")
    failed = repo.dvc("repro", "cache", check=False)
    assert failed.returncode != 0 and f"{sample_id}: unreadable or corrupt image" in failed.stderr

    repo.set_params(**{"preprocess.on_error": "skip"})
    repo.dvc("repro", "cache")
    report = json.loads((repo.path / "reports/landmarks.json").read_text())
    assert report["failed"] == 1 and report["failures"][0]["sample_id"] == sample_id
    assert len(Cache(repo.path / "data/cache.h5")) == 3
