"""kill -9 of the launching process (dvc repro) leaves no stage process running."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from mer.cache_store import CacheWriter
from tests.training.test_train import LABELS, SIZE, WINDOW, _clip

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")


def _processes(marker: str, cwd: Path | None = None) -> list[int]:
    """Live (not zombie) processes whose command line contains `marker` (and that run in `cwd`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            here = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if marker in cmdline and state != "Z" and (cwd is None or here == cwd):
            found.append(int(entry.name))
    return found


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_child_and_its_forked_worker_exit_when_the_parent_is_killed(tmp_path):
    marker = f"lifecycle-{os.getpid()}-{tmp_path.name}"
    child = (
        f"import os, time; from mer.lifecycle import exit_with_parent; exit_with_parent(); "
        f"os.fork() or None; time.sleep(120)  # {marker}"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        started = lambda: [p for p in _processes(marker) if p != parent.pid]  # noqa: E731
        assert _wait_for(lambda: len(started()) == 2, 30), "the child and its fork did not start"
        parent.kill()
        parent.wait()
        assert _wait_for(lambda: not started(), 10), f"orphans left: {started()}"
    finally:
        parent.kill()
        _kill_all(_processes(marker))


@pytest.mark.slow  # a real `dvc repro`
@pytest.mark.parametrize("when", ["importing", "training"])
@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_kill_9_of_dvc_repro_leaves_no_train_stage_running(tmp_path, when, shell):
    """A real `dvc repro` of stages/train.py (a long run), killed with SIGKILL while the stage is still
    importing torch, or once it has printed its first epoch. DVC runs the command with $SHELL: bash execs
    it, so dvc is the stage's parent; dash (/bin/sh, also DVC's shell when SHELL is unset) stays between."""
    repo = tmp_path / "repo"
    for name in ("stages", "mer"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    rng = np.random.default_rng(0)
    with CacheWriter(
        repo / "cache.h5", 12, WINDOW, SIZE, ["left", "right"], True, {"dataset": {"name": "toy"}}
    ) as writer:
        for subject, labels in LABELS.items():
            for n, label in enumerate(labels):
                writer.add(_clip(subject, n, label, rng))
    params = {
        "input": {"kind": "difference", "size": SIZE},
        "model": {"name": "mmnet", "options": {"width_mult": 0.25, "stem_width": 16}},
        "train": {"epochs": 100000, "batch_size": 4, "seeds": [7]},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    stage = {
        "cmd": "python stages/train.py --subject sub01 --cache cache.h5 --models models --reports folds",
        "deps": ["stages/train.py", "cache.h5"],
        "params": ["input", "model", "train"],
        "outs": ["models"],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": str(repo),
        "SHELL": shell,
    }
    for command in (["git", "init", "-q"], [f"{bin_dir}/dvc", "init", "-q"]):
        subprocess.run(command, cwd=repo, env=env, check=True, capture_output=True)
    log = tmp_path / "repro.log"
    with log.open("w") as out:
        dvc = subprocess.Popen([f"{bin_dir}/dvc", "repro"], cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert _wait_for(lambda: _processes("stages/train.py", repo), 60), "dvc repro never started the stage"
        if when == "training":
            # the progress bar has counted a first epoch: "| 1/100000 [" (tqdm)
            assert _wait_for(lambda: re.search(r"\| [1-9]\d*/100000 \[", log.read_text()), 120), log.read_text()
        dvc.send_signal(signal.SIGKILL)
        dvc.wait()
        assert _wait_for(lambda: not _processes("stages/train.py", repo), 15), (
            f"stages/train.py still running after kill -9 of dvc repro: {_processes('stages/train.py', repo)}"
        )
    finally:
        dvc.kill()
        _kill_all(_processes("stages/train.py", repo))
