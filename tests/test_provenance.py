"""mer.provenance.git_commit: the commit `mer --version` and the report page name."""

from __future__ import annotations

import subprocess

from mer.provenance import git_commit


def _git(path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_commit_clean_dirty_and_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) == "unknown (not a git checkout)"
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == head[:12]
    (tmp_path / "untracked.txt").write_text("not tracked: not a change to the code\n")
    assert git_commit(tmp_path) == head[:12]
    (tmp_path / "a.txt").write_text("two\n")
    assert git_commit(tmp_path) == f"{head[:12]} + uncommitted changes"
