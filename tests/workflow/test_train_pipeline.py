"""Issue 4's DVC side: one stage per LOSO fold, fold outputs, selective re-runs, resume after a kill."""
from __future__ import annotations

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

FOLDS = {"train@sub01", "train@sub02"}


def _locked_epochs(repo) -> dict[str, int]:
    """train.epochs each fold's dvc.lock entry was trained with ({} while DVC rewrites the file)."""
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text()) or {}
    return {name: entry["params"]["params.yaml"]["train"]["epochs"]
            for name, entry in lock.get("stages", {}).items() if name in FOLDS}


def test_folds_train_cache_and_rerun_only_what_a_param_touches(built):
    repo = built  # reproduced once from synthesize (conftest.pipeline)
    for subject in ("sub01", "sub02"):
        table = pd.read_csv(repo.path / f"reports/folds/{subject}/predictions.csv")
        assert set(table.subject) == {subject} and len(table) == 2
        state = torch.load(repo.path / f"models/{subject}.pt", weights_only=True)
        params = repo.params()
        model = build_model("mmnet", 2, 3, input_size=32, **params["model"]["options"])
        model.load_state_dict(state)
    assert "up to date" in repo.dvc("status").stdout

    repo.set_params(**{"model.options.width_mult": 0.5})
    assert ran(repo.dvc("repro").stdout) == FOLDS | {"report"}  # no preprocessing, no flow
    repo.set_params(**{"flow.size": 16})
    assert ran(repo.dvc("repro").stdout) == {"flow"}  # kind `difference`: no fold depends on data/flow.h5

    single = repo.dvc("repro", "train@sub02", "--force", "--single-item")
    assert ran(single.stdout) == {"train@sub02"}


def test_a_killed_run_resumes_with_the_unfinished_folds(built):
    repo = built
    repo.set_params(**{"train.epochs": 40})
    run = subprocess.Popen([repo.dvc_path, "repro"], cwd=repo.path, env=repo.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while _locked_epochs(repo).get("train@sub01") != 40:
        assert run.poll() is None and time.monotonic() < deadline, "dvc repro ended before fold 1 was locked"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert _locked_epochs(repo) == {"train@sub01": 40, "train@sub02": 2}  # killed while training sub02

    resumed = repo.dvc("repro")
    assert ran(resumed.stdout) == {"train@sub02", "report"}
    assert "Stage 'train@sub01' didn't change, skipping" in resumed.stdout
    assert _locked_epochs(repo) == {"train@sub01": 40, "train@sub02": 40}
    assert "up to date" in repo.dvc("status").stdout
