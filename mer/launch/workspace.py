"""The head workspace as DVC and git see it: its stale fold stages, a snapshot commit of its tracked files, its
DVC cache, and `dvc` run in it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx  # type: ignore[import-untyped]
import yaml
from dvc.parsing import JOIN
from dvc.repo import Repo


@dataclass(frozen=True)
class Fold:
    stage: str  # DVC's name for it, e.g. train@sub01
    cmd: str  # what it runs, which names the subject
    inputs: tuple[str, ...]  # its deps that other stages write: checked out from the cache in its clone


FOLD_GROUPS = ("train", "final")  # dvc.yaml's fold stages: the matrix of LOSO folds and the optional final model


def fold_stages(root: Path) -> tuple[list[Fold], list[str]]:
    """The stale fold stages (those DVC generated from `train` and `final`), and the stale stages upstream of any.

    Other generated stages (`cache@<data set>` and the like: a foreach only makes them optional) are no folds:
    upstream ones run here first, downstream ones in the head's `dvc repro`."""

    def is_fold(stage: Any) -> bool:
        return stage.addressing.split(JOIN)[0] in FOLD_GROUPS and JOIN in stage.addressing

    with Repo(str(root)) as repo:
        graph = repo.index.graph
        stale = set(repo.status())
        generated = [s for s in graph.nodes if is_fold(s)]
        upstream = {a for s in generated for a in _ancestors(graph, s) if not is_fold(a)}
        nested = sorted({s.addressing for s in generated for a in _ancestors(graph, s) if is_fold(a)})
        if nested:
            raise SystemExit(
                f"mer launch: stages {nested} depend on other fold stages; mer launch runs one "
                "level of folds, so run `dvc repro` for them"
            )
        written = {out.def_path for s in graph.nodes for out in s.outs}
        folds = [
            Fold(s.addressing, s.cmd, tuple(d.def_path for d in s.deps if d.def_path in written))
            for s in generated
            if s.addressing in stale
        ]
        upstream_stale = [s.addressing for s in upstream if s.addressing in stale]
    return sorted(folds, key=lambda f: f.stage), sorted(upstream_stale)


def _ancestors(graph: Any, stage: Any) -> set:
    """What `stage` depends on, directly or not (DVC's graph points from a stage to its dependencies)."""
    return set(nx.descendants(graph, stage))


def snapshot(root: Path) -> str:
    """A commit of the tracked files as they are now (HEAD when nothing is modified); names the untracked files."""
    if subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True).returncode:
        raise SystemExit(
            f"mer launch: {root} has no git commit yet; commit the project (git add -A && git commit) "
            "so that the fold clones have something to check out"
        )
    stash = _git(root, "stash", "create")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard").splitlines()
    if untracked:
        shown = ", ".join(untracked[:10]) + (f" and {len(untracked) - 10} more" if len(untracked) > 10 else "")
        print(
            f"mer launch: {len(untracked)} untracked files are not in the fold clones (git add them if a fold "
            f"needs them): {shown}",
            flush=True,
        )
    return stash or _git(root, "rev-parse", "HEAD")


def cache_dir(root: Path) -> str:
    with Repo(str(root)) as repo:
        return str(repo.cache.local_cache_dir)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"mer launch: git {' '.join(args)} failed in {root}:\n{done.stderr}")
    return done.stdout.strip()


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`dvc <args>` in the head workspace, its output streamed to ours."""
    return subprocess.run([dvc_executable(), *args], cwd=root)


def dvc_executable() -> str:
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else "dvc"


def task_settings(root: Path, threads: int, folds: list[Fold]) -> dict[str, Any]:
    """What every fold task needs of the head: its snapshot commit, the dvc.lock entries of the folds' inputs, its
    local DVC config and cache, and the thread budget (as the OMP_NUM_THREADS of what runs before the fold)."""
    config_local = root / ".dvc" / "config.local"
    return {
        "head": str(root),
        "commit": snapshot(root),
        "lock": inputs_lock(root / "dvc.lock", {path for fold in folds for path in fold.inputs}),
        "cache": cache_dir(root),
        "threads": str(threads),
        "config_local": config_local.read_text() if config_local.exists() else None,
    }


def inputs_lock(path: Path, inputs: set[str]) -> str | None:
    """The dvc.lock at `path` cut to the stages that write any of `inputs`: what a clone needs to check them out
    (DVC reads and rewrites a clone's whole lock for each stage it runs there)."""
    if not path.exists():
        return None
    lock = yaml.load(path.read_text(), Loader=yaml.CSafeLoader) or {}
    stages = {
        name: entry
        for name, entry in (lock.get("stages") or {}).items()
        if any(out.get("path") in inputs for out in entry.get("outs", []))
    }
    return yaml.safe_dump({**lock, "stages": stages}, sort_keys=False)
