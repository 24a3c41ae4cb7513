"""Issues 4 and 13 under DVC: one stage per LOSO fold and seed, fold and DVCLive outputs, selective re-runs
(a new seed trains only its folds), byte-identical re-runs, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch
import yaml

from mer.models import build_model
from tests.workflow.conftest import ran

pytestmark = pytest.mark.slow

FOLDS = {"train@sub01-7", "train@sub02-7"}
LIVE = ["metrics.json", "plots/metrics/train/loss.tsv", "plots/metrics/train/acc.tsv", "plots/metrics/test/acc.tsv"]


def _locked_epochs(repo) -> dict[str, int]:
    """train.epochs each fold's dvc.lock entry was trained with.

    DVC rewrites dvc.lock in place, so a poll can read it empty or cut off mid-entry: that reads as {}
    (not yet), and the caller polls again."""
    try:
        lock = yaml.safe_load((repo.path / "dvc.lock").read_text()) or {}
        return {
            name: entry["params"]["params.yaml"]["train.epochs"]
            for name, entry in lock.get("stages", {}).items()
            if name in FOLDS
        }
    except (yaml.YAMLError, KeyError, TypeError):
        return {}


def _lock_outs(repo, stage: str) -> dict[str, str]:
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())
    return {out["path"]: out.get("md5") for out in lock["stages"][stage]["outs"]}


def test_folds_train_cache_and_rerun_only_what_a_param_touches(built):
    repo = built  # reproduced once from synthesize (conftest.pipeline)
    for subject in ("sub01", "sub02"):
        table = pd.read_csv(repo.path / f"reports/folds/seed7/{subject}/predictions.csv")
        assert set(table.subject) == {subject} and len(table) == 2
        state = torch.load(repo.path / f"models/seed7/{subject}.pt", weights_only=True)
        params = repo.params()
        model = build_model("mmnet", 2, 3, input_size=32, **params["model"]["options"])
        model.load_state_dict(state)
        live = repo.path / f"reports/folds/seed7/{subject}/live"
        assert json.loads((live / "metrics.json").read_text())["step"] == 2  # epochs are DVCLive's steps
        assert (live / "plots/metrics/train/loss.tsv").read_text().splitlines()[0] == "step\tloss"
        outs = _lock_outs(repo, f"train@{subject}-7")
        assert {f"reports/folds/seed7/{subject}/live/{name}" for name in ("metrics.json", "plots/metrics")} <= set(outs)
    shown = json.loads(repo.dvc("metrics", "show", "--json").stdout)[""]["data"]
    assert shown["reports/folds/seed7/sub02/live/metrics.json"]["data"]["step"] == 2
    assert "up to date" in repo.dvc("status").stdout

    # the same fold trained again writes the same bytes, DVCLive's files included
    before = _lock_outs(repo, "train@sub01-7")
    assert ran(repo.dvc("repro", "train@sub01-7", "--force", "--single-item").stdout) == {"train@sub01-7"}
    assert _lock_outs(repo, "train@sub01-7") == before and "up to date" in repo.dvc("status").stdout

    repo.set_params(**{"train.seeds": [7, 8]})  # a new seed trains its own folds only
    assert ran(repo.dvc("repro").stdout) == {"train@sub01-8", "train@sub02-8", "report"}
    seeded = yaml.safe_load((repo.path / "dvc.lock").read_text())["stages"]["train@sub01-8"]
    assert seeded["cmd"] == (
        "python stages/train.py --subject sub01 --seed 8 --cache data/cache.h5 --motion data/cache.h5 "
        "--models models --reports reports/folds"
    )
    assert (repo.path / "models/seed8/sub01.pt").read_bytes() != (repo.path / "models/seed7/sub01.pt").read_bytes()
    repo.set_params(**{"train.seeds": [7]})

    repo.set_params(**{"model.options.width_mult": 0.5})
    assert ran(repo.dvc("repro").stdout) == FOLDS | {"attention@synthetic", "report"}  # no preprocessing, no flow
    repo.set_params(**{"flow.size": 16})
    assert ran(repo.dvc("repro").stdout) == set()  # kind `difference`: no flow stage, nothing computes a flow

    single = repo.dvc("repro", "train@sub02-7", "--force", "--single-item")
    assert ran(single.stdout) == {"train@sub02-7"}


def test_a_killed_run_resumes_with_the_unfinished_folds(built):
    repo = built
    repo.set_params(**{"train.epochs": 40})
    run = subprocess.Popen(
        [repo.dvc_path, "repro"],
        cwd=repo.path,
        env=repo.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while _locked_epochs(repo).get("train@sub01-7") != 40:
        assert run.poll() is None and time.monotonic() < deadline, "dvc repro ended before fold 1 was locked"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert _locked_epochs(repo) == {"train@sub01-7": 40, "train@sub02-7": 2}  # killed while training sub02

    resumed = repo.dvc("repro")
    assert ran(resumed.stdout) == {"train@sub02-7", "attention@synthetic", "report"}
    assert "Stage 'train@sub01-7' didn't change, skipping" in resumed.stdout
    assert _locked_epochs(repo) == {"train@sub01-7": 40, "train@sub02-7": 40}
    live = json.loads((repo.path / "reports/folds/seed7/sub02/live/metrics.json").read_text())
    assert live["step"] == 40  # the killed fold's DVCLive files were started afresh, not appended to
    assert "up to date" in repo.dvc("status").stdout
