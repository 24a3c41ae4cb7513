"""Real DVC runs in temporary git repositories holding a copy of this project.

`built` is the tiny pipeline already reproduced and committed: it is built once per test session
(`pipeline`) and copied per test, so a test starts from a finished run instead of re-running from
`synthesize`. `repo` is a fresh, never-run repository for tests that need one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

PROJECT = Path(__file__).resolve().parents[2]
COPIED = ["dvc.yaml", "params.yaml", "stages", "mer", ".gitignore"]


def ran(output: str) -> set[str]:
    """The stages a `dvc repro` output says it ran."""
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ["PATH"],
            "DVC_NO_ANALYTICS": "1",
            "PYTHONPATH": str(path),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    dvc_path = str(Path(sys.executable).parent / "dvc")

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(self.dvc_path, *args, check=check)

    def set_params(self, **changes: object) -> None:
        """Set dotted keys, e.g. set_params(**{"ingest.margin_frames": 2})."""
        path = self.path / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for dotted, value in changes.items():
            node = params
            *parents, last = dotted.split(".")
            for key in parents:
                node = node[key]
            node[last] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())


TINY = {
    "synthesize.subjects": 2,
    "synthesize.classes": ["happiness", "surprise"],
    "synthesize.clips_per_class": 1,
    "synthesize.frames": [14, 16],
    "dataset.subjects": ["sub01", "sub02"],
    "input.size": 32,
    "train.epochs": 2,
    "train.batch_size": 4,
    "train.seeds": [7],
    "train.threads": 1,  # one per fold: what `mer launch --workers 2` gives on 2 cores, so its folds are these
}


def make_repo(path: Path) -> Repo:
    """A git + DVC repository at `path` with this project's pipeline and a tiny synthetic set."""
    for name in COPIED:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            path.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, path / name)
    r = Repo(path)
    r.run("git", "init", "-q")
    r.run("git", "config", "user.email", "test@example.com")
    r.run("git", "config", "user.name", "test")
    r.dvc("init", "-q")
    r.dvc("config", "core.analytics", "false")
    r.set_params(**TINY)
    tiny_protocol = {"classes": ["happiness", "surprise"], "map": {"happiness": "happiness", "surprise": "surprise"}}
    r.set_params(**{"protocols.synthetic_4class": tiny_protocol})
    return r


@pytest.fixture
def repo(tmp_path) -> Repo:
    return make_repo(tmp_path)


ALL_STAGES = {
    "synthesize@synthetic",
    "ingest",
    "landmarks@synthetic",
    "normalise@synthetic",
    "crop@synthetic",
    "cache@synthetic",
    "train@sub01-7",
    "train@sub02-7",
    "attention@synthetic",
    "report",
}


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Repo:
    """The tiny pipeline, reproduced once and committed (copy it with `built`; never change it).

    Under pytest-xdist the workers share one build: the first to take the lock builds it, the others
    wait and reuse it (each would otherwise spend the ~40 s build again)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _build_pipeline(tmp_path_factory.mktemp("pipeline") / "repo")
    shared = tmp_path_factory.getbasetemp().parent
    with FileLock(shared / "pipeline.lock"):
        path, done = shared / "pipeline" / "repo", shared / "pipeline.built"
        if not done.exists():
            _build_pipeline(path)
            done.touch()
    return Repo(path)


def _build_pipeline(path: Path) -> Repo:
    r = make_repo(path)
    first = r.dvc("repro")
    assert ran(first.stdout) == ALL_STAGES, first.stdout
    r.run("git", "add", "-A")
    r.run("git", "commit", "-qm", "pipeline")
    return r


def copy_repo(source: Repo, path: Path) -> Repo:
    """A copy of `source` (workspace, git and DVC cache) at `path`.

    The DVC cache is hard-linked, not copied: DVC writes a cache file once under its hash and never
    in place (it replaces or adds files), so the copies cannot alter `source`. Workspace files are copied:
    tests overwrite them."""
    cache = source.path / ".dvc" / "cache"
    shutil.copytree(
        source.path, path, symlinks=True, ignore=lambda d, names: ["cache"] if Path(d) == cache.parent else []
    )
    if cache.is_dir():
        shutil.copytree(cache, path / ".dvc" / "cache", copy_function=os.link)
    return Repo(path)


@pytest.fixture
def built(pipeline, tmp_path) -> Repo:
    """A private copy of the reproduced pipeline: `dvc status` is up to date."""
    return copy_repo(pipeline, tmp_path / "repo")
