"""DVCLive's files for a fold: one TSV per scalar, steps = epochs, a summary, no timestamps, stale files cleared."""

from __future__ import annotations

import json
import subprocess

from mer.training.live import epoch_logger

RECORDS = [
    {
        "epoch": 1,
        "lr": 8e-4,
        "train_loss": 1.25,
        "train_acc": 0.5,
        "test_loss": 1.5,
        "test_acc": 0.25,
        "test_pred": [0, 1, 1, 0],
    },
    {
        "epoch": 2,
        "lr": 7.9e-4,
        "train_loss": 0.75,
        "train_acc": 0.875,
        "test_loss": 1.0,
        "test_acc": 0.5,
        "test_pred": [0, 1, 0, 0],
    },
]


def _run(directory) -> dict[str, bytes]:
    with epoch_logger(directory) as log:
        for record in RECORDS:
            log(record)
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_one_tsv_per_scalar_with_epochs_as_steps_and_the_last_epoch_summarised(tmp_path):
    files = _run(tmp_path / "live")
    assert set(files) == {
        "metrics.json",
        "plots/metrics/lr.tsv",
        "plots/metrics/train/loss.tsv",
        "plots/metrics/train/acc.tsv",
        "plots/metrics/test/loss.tsv",
        "plots/metrics/test/acc.tsv",
    }
    assert files["plots/metrics/train/loss.tsv"].decode() == "step\tloss\n1\t1.25\n2\t0.75\n"  # no timestamp column
    assert json.loads(files["metrics.json"]) == {
        "lr": 7.9e-4,
        "train": {"loss": 0.75, "acc": 0.875},
        "test": {"loss": 1.0, "acc": 0.5},
        "step": 2,
    }


def test_same_epochs_same_bytes_and_a_rerun_clears_the_old_files(tmp_path):
    first = _run(tmp_path / "live")
    (tmp_path / "live" / "plots" / "metrics" / "val").mkdir()
    (tmp_path / "live" / "plots" / "metrics" / "val" / "acc.tsv").write_text("step\tacc\n1\t0.5\n")
    assert _run(tmp_path / "live") == first


def test_works_in_a_git_repository_without_commits_and_leaves_it_alone(tmp_path, monkeypatch):
    """`git init` then `dvc repro` must not fail in the fold stage (DVCLive's own hook-up raises "Empty git repo")."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))  # as under `dvc repro`
    files = _run(tmp_path / "live")
    assert json.loads(files["metrics.json"])["step"] == 2
    assert not (tmp_path / ".dvc").exists() and sorted(p.name for p in tmp_path.iterdir()) == [".git", "live"]
