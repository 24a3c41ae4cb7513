"""Which code a run or a command came from: the git commit of a checkout, marked when it had uncommitted
changes. `mer --version` asks it of the installed package's checkout, the report of the DVC workspace."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(where: str | Path = ".") -> str:
    """The commit checked out at `where` (12 hex digits), `+ uncommitted changes` when tracked files differ
    from it, or `unknown (not a git checkout)`."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if dirty else commit
