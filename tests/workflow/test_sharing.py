"""Issue 6's sharing: the project's default remote, push with run-cache, a fresh clone restores without running."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from tests.workflow.conftest import PROJECT, Repo, ran

pytestmark = pytest.mark.slow

CHECKED = ["data/manifest.csv", "data/cache.h5", "models/seed7/sub01.pt", "reports/folds/seed7/sub02/predictions.csv"]


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _clone(source: Repo, path) -> Repo:
    source.run("git", "clone", "-q", str(source.path), str(path))
    return Repo(path)


def _with_default_remote(built: Repo) -> Repo:
    """The reproduced pipeline, committed with the project's shipped .dvc/config (its default remote)."""
    shutil.copy(PROJECT / ".dvc/config", built.path / ".dvc/config")
    built.run("git", "commit", "-qam", "default remote")
    return built


def test_push_then_a_fresh_clone_pulls_everything_and_runs_nothing(built, tmp_path):
    a = _with_default_remote(built)
    a.dvc("push", "--run-cache")
    assert (tmp_path / "mer-dvc-remote").is_dir()  # beside the clone, outside the repository
    sums = {name: _md5(a.path / name) for name in CHECKED}

    b = _clone(a, tmp_path / "b")
    assert not (b.path / "data/cache.h5").exists()
    b.dvc("pull")
    rerun = b.dvc("repro")
    assert ran(rerun.stdout) == set() and "didn't change, skipping" in rerun.stdout
    assert "up to date" in b.dvc("status").stdout
    assert {name: _md5(b.path / name) for name in CHECKED} == sums

    (b.path / "data/manifest.csv").write_text("sample_id\nbroken\n")
    (b.path / "models/seed7/sub01.pt").write_bytes(b"not a checkpoint")
    status = b.dvc("status").stdout
    assert "modified:" in status and "data/manifest.csv" in status and "models/seed7/sub01.pt" in status
    b.dvc("checkout", "--force")
    assert {name: _md5(b.path / name) for name in CHECKED} == sums
    assert "up to date" in b.dvc("status").stdout

    c = _clone(a, tmp_path / "c")
    assert ran(c.dvc("repro", "--pull").stdout) == set()
    assert {name: _md5(c.path / name) for name in CHECKED} == sums


def test_run_cache_shares_results_that_were_never_committed(built, tmp_path):
    a = _with_default_remote(built)
    a.dvc("push")
    a.set_params(**{"train.epochs": 3})  # an experiment A runs but does not commit
    assert ran(a.dvc("repro").stdout) >= {"train@sub01-7", "train@sub02-7"}
    a.dvc("push", "--run-cache")
    model = _md5(a.path / "models/seed7/sub01.pt")

    b = _clone(a, tmp_path / "b")
    b.set_params(**{"train.epochs": 3})
    restored = b.dvc("repro", "--pull")
    # the folds come back from the run-cache; only the stages with git-tracked outputs only (never run-cached)
    # re-run: the report and the attention figure
    assert ran(restored.stdout) == {"attention@synthetic", "report"}, restored.stdout
    for subject in ("sub01", "sub02"):
        assert f"Stage 'train@{subject}-7' is cached - skipping run, checking out outputs" in restored.stdout
    assert _md5(b.path / "models/seed7/sub01.pt") == model
