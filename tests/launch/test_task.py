"""A fold task's clone: what it holds, that a LocalPool slot's folds share one and a Ray task's is its own, and the
dvc.lock it gets (the entries of the folds' inputs only)."""

from __future__ import annotations

import queue
import subprocess
from pathlib import Path

import yaml

from mer.launch import task
from mer.launch.task import Clone, Slot, run_fold
from mer.launch.workspace import Fold, inputs_lock


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout.strip()


def head(tmp_path: Path) -> dict:
    """A committed project with a .dvc folder, and the settings a task gets of it."""
    root = tmp_path / "head"
    (root / ".dvc").mkdir(parents=True)
    (root / ".dvc" / "config").write_text("[core]\n    autostage = false\n")
    (root / "stages.txt").write_text("train\n")
    git(root, "init", "-q")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "project")
    return {
        "head": str(root),
        "commit": git(root, "rev-parse", "HEAD"),
        "lock": "schema: '2.0'\nstages: {}\n",
        "cache": str(tmp_path / "cache"),
        "threads": "1",
        "config_local": None,
    }


def test_a_clone_holds_the_snapshot_the_lock_and_the_heads_cache(tmp_path):
    settings = head(tmp_path)
    clone = Clone(settings)
    try:
        assert clone.path.is_dir() and clone.path != Path(settings["head"])
        assert (clone.path / "stages.txt").read_text() == "train\n"
        assert git(clone.path, "rev-parse", "HEAD") == settings["commit"]
        assert (clone.path / "dvc.lock").read_text() == settings["lock"]
        local = (clone.path / ".dvc" / "config.local").read_text()
        assert "[cache]" in local and str(tmp_path / "cache") in local
    finally:
        clone.remove()
    assert not clone.path.exists()


def test_a_slots_folds_share_one_clone_and_inputs_are_checked_out_once(tmp_path, monkeypatch):
    settings = head(tmp_path)
    commands: list[tuple[str, ...]] = []

    def interruptible(args, cwd, threads=None, gpu=None, check=False):
        commands.append((str(cwd), *args[1:]))
        return subprocess.CompletedProcess(args, 0, "Running stage 'x':\n")

    monkeypatch.setattr(task, "interruptible", interruptible)
    slot, events = Slot(gpu="1"), queue.Queue()
    try:
        for name in ("train@a", "train@b", "final@all"):
            inputs = ("data/cache.h5", "data/flow.h5") if name == "final@all" else ("data/cache.h5",)
            result = run_fold(Fold(name, "python stages/train.py", inputs), settings, events, slot)
            assert result.returncode == 0 and result.stage == name
        assert slot.clone is not None and slot.clone.path.is_dir()
        where = str(slot.clone.path)
        assert commands == [
            (where, "checkout", "data/cache.h5"),
            (where, "repro", "--single-item", "train@a"),
            (where, "repro", "--single-item", "train@b"),
            (where, "checkout", "data/flow.h5"),
            (where, "repro", "--single-item", "final@all"),
        ]
    finally:
        if slot.clone is not None:
            slot.clone.remove()


def test_a_task_without_a_slot_removes_its_clone(tmp_path, monkeypatch):
    settings = head(tmp_path)
    seen: list[Path] = []

    def interruptible(args, cwd, threads=None, gpu=None, check=False):
        seen.append(Path(cwd))
        return subprocess.CompletedProcess(args, 1, "boom\n")

    monkeypatch.setattr(task, "interruptible", interruptible)
    result = run_fold(Fold("train@a", "python stages/train.py", ()), settings, queue.Queue())
    assert result.returncode == 1 and "boom" in result.log
    assert len(seen) == 1 and not seen[0].exists()


def test_the_clones_lock_holds_only_the_stages_that_write_the_folds_inputs(tmp_path):
    def entry(*outs: str) -> dict:
        return {"cmd": "python x.py", "outs": [{"path": out, "hash": "md5", "md5": "0" * 32} for out in outs]}

    lock = {
        "schema": "2.0",
        "stages": {
            "cache@synthetic": entry("data/cache.h5", "reports/cache.json"),
            "flow@synthetic": entry("data/flow.h5"),
            "train@sub01-7": entry("models/seed7/sub01.pt"),
            "report": entry("reports/metrics.json"),
        },
    }
    path = tmp_path / "dvc.lock"
    path.write_text(yaml.safe_dump(lock, sort_keys=False))
    cut = yaml.safe_load(inputs_lock(path, {"data/cache.h5"}) or "")
    assert cut == {"schema": "2.0", "stages": {"cache@synthetic": lock["stages"]["cache@synthetic"]}}
    both = yaml.safe_load(inputs_lock(path, {"data/cache.h5", "data/flow.h5"}) or "")
    assert list(both["stages"]) == ["cache@synthetic", "flow@synthetic"]
    assert inputs_lock(tmp_path / "missing.lock", {"data/cache.h5"}) is None
