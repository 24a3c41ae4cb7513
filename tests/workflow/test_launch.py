"""`mer launch`: the default folds on this machine (its own pool, and as Ray tasks on a local 2-CPU Ray), then the
head's `dvc repro`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.workflow.conftest import Repo, make_repo, ran

pytestmark = pytest.mark.slow

FINAL = "mer launch: dvc repro"
FOLDS = {"train@sub01-7", "train@sub02-7"}


@pytest.fixture(scope="module")
def ray_tmp() -> Iterator[str]:
    """A short Ray temp dir (its socket paths must stay under 107 characters), checked empty of processes after."""
    path = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    yield path
    leftover = [cmd for cmd in _cmdlines().values() if path in cmd]
    shutil.rmtree(path, ignore_errors=True)
    assert not leftover, f"Ray processes left running: {leftover}"


@pytest.fixture(scope="module")
def launched(tmp_path_factory, ray_tmp) -> tuple[Repo, subprocess.CompletedProcess]:
    repo = make_repo(tmp_path_factory.mktemp("launched"))
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "tiny project")
    return repo, launch(repo, ray_tmp)


def launch(repo: Repo, ray_tmp: str, check: bool = True, *options: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "mer", "launch", "--workers", "2", *options],
        cwd=repo.path,
        env={**repo.env, "RAY_TMPDIR": ray_tmp},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and done.returncode:
        raise AssertionError(f"mer launch failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    assert not [cmd for cmd in _cmdlines().values() if ray_tmp in cmd], "mer launch left Ray processes running"
    return done


def test_folds_run_on_this_machine_and_the_head_only_runs_the_report(launched, pipeline):
    repo, done = launched
    before, after = done.stdout.split(FINAL)
    assert ran(before) == {
        "synthesize@synthetic",
        "ingest",
        "landmarks@synthetic",
        "normalise@synthetic",
        "crop@synthetic",
        "cache@synthetic",
    }  # no flow: kind difference folds do not read it
    cores = len(os.sched_getaffinity(0))
    budget = f"thread budget: 2 workers x 1 thread (on {cores} cores)"  # TINY's train.threads 1: kept as it is
    assert budget + "\n" in before or budget + "; OVERSUBSCRIBED" in before, before
    assert "2 folds on this machine (1 thread each, no GPU), 2 at once" in before
    assert "Ray" not in done.stdout + done.stderr  # no --address: no Ray
    assert {line.split()[1] for line in before.splitlines() if line.startswith("start ")} == FOLDS
    ends = [line for line in before.splitlines() if line.startswith("[")]
    assert len(ends) == 2 and all(" done in " in line and "also ran" not in line for line in ends), ends
    assert "2 folds in" in before and "2 done, 0 failed" in before
    assert "restored 2 of 2 finished folds here from the run-cache" in before
    assert ran(after) == {"attention@synthetic", "report"}  # no flow stage: kind difference computes none
    for fold in FOLDS:
        assert f"Stage '{fold}' is cached - skipping run" in before
        assert f"Stage '{fold}' didn't change, skipping" in after
    assert "Data and pipelines are up to date" in repo.dvc("status").stdout
    assert json.loads((repo.path / "reports/metrics.json").read_text()) == json.loads(
        (pipeline.path / "reports/metrics.json").read_text()
    )
    for name in ("predictions.csv", "curves.csv"):
        assert (repo.path / "reports" / name).read_text() == (pipeline.path / "reports" / name).read_text()


def test_launched_folds_are_byte_identical_to_dvc_repro_at_the_same_threads(launched, pipeline):
    """The session pipeline's folds ran in one `dvc repro`; these ran 2 at once, each in its own clone, with
    the same `train.threads` (1): the model files and every fold output are the same bytes."""
    repo, _ = launched
    assert repo.params()["train"]["threads"] == pipeline.params()["train"]["threads"] == 1
    for subject in ("sub01", "sub02"):
        folds = Path("reports/folds/seed7") / subject
        for path in (Path("models/seed7") / f"{subject}.pt", folds / "predictions.csv", folds / "curves.json"):
            assert (repo.path / path).read_bytes() == (pipeline.path / path).read_bytes(), path
        assert json.loads((repo.path / folds / "curves.json").read_text())["threads"] == 1


def test_the_head_writes_the_lock_entries_dvc_repro_writes(launched, pipeline):
    """The head restores the folds through DVC's stage API with one dvc.lock write (mer/launch/restore.py): each
    fold's entry (command, dependency and output hashes, params) is the one `dvc repro` wrote for it."""
    repo, _ = launched

    def entries(path: Path) -> dict:
        return yaml.safe_load((path / "dvc.lock").read_text())["stages"]

    for fold in FOLDS:
        assert entries(repo.path)[fold] == entries(pipeline.path)[fold], fold


def test_a_failed_fold_is_reported_and_a_rerun_completes(launched, ray_tmp):
    """An uncommitted params edit reaches the clones; a fold killed mid-run (as by the OOM killer) fails alone, here
    as a Ray task (`--address local`); the rerun goes through the local pool.
    `train.threads: auto` (every core) is not what 2 workers get on 2 cores, so launch sets the budget as the
    param before the folds run: the folds' params, dvc.lock and curves.json all say what they ran with."""
    repo, _ = launched
    repo.set_params(**{"train.epochs": 3, "train.threads": "auto"})
    cores = len(os.sched_getaffinity(0))
    budget = max(1, cores // 2)
    process = subprocess.Popen(
        [sys.executable, "-m", "mer", "launch", "--workers", "2", "--address", "local"],
        cwd=repo.path,
        env={**repo.env, "RAY_TMPDIR": ray_tmp},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed = _kill_when_running("stages/train.py --subject sub02", timeout=600)
    out, _ = process.communicate(timeout=900)
    assert killed, out
    assert process.returncode == 1, out
    assert f"2 folds on Ray ({2 * budget} CPUs, {budget} CPU and 0 GPU per task), 2 at once" in out, out
    if budget != cores:
        assert f"train.threads auto -> {budget} in params.yaml" in out, out
    assert "FAILED train@sub02-7" in out and "python stages/train.py --subject sub02" in out
    assert "1 done, 1 failed" in out and "restored 1 of 1 finished folds" in out and FINAL not in out
    assert "train@sub02-7" in (repo.path / ".dvc/tmp/mer-launch/train@sub02-7.log").read_text()
    stale = json.loads(repo.dvc("status", "--json").stdout)
    assert set(stale) == {"train@sub02-7", "attention@synthetic", "report"}, stale

    done = launch(repo, ray_tmp)
    before, after = done.stdout.split(FINAL)
    assert [line.split()[1] for line in before.splitlines() if line.startswith("start ")] == ["train@sub02-7"]
    assert ran(after) == {"attention@synthetic", "report"}
    curves = json.loads((repo.path / "reports/folds/seed7/sub02/curves.json").read_text())
    assert curves["train"]["epochs"] == 3 and curves["threads"] == budget
    assert repo.params()["train"]["threads"] == (budget if budget != cores else "auto")
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())["stages"]["train@sub02-7"]["params"]["params.yaml"]
    assert lock["train.threads"] == repo.params()["train"]["threads"]  # the run-cache's key: the setting it ran at
    assert "Data and pipelines are up to date" in repo.dvc("status").stdout


def _kill_when_running(needle: str, timeout: float) -> bool:
    """SIGKILL the first process whose command line contains `needle` (a fold's stage script in its clone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, cmd in _cmdlines().items():
            if needle in cmd and "mer-launch-" in _cwd(pid):
                os.kill(pid, signal.SIGKILL)
                return True
        time.sleep(0.05)
    return False


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def _cmdlines() -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    return found
