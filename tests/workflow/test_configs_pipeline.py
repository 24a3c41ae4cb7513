"""Issue 6's configurations under real DVC: each shipped data set config on a fixture of its layout,
and the README's one command for the CASME II paper experiment on a CASME II-layout fixture."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml
from dvc.utils.hydra import compose_and_dump

from tests.datasets import fixtures
from tests.workflow.conftest import PROJECT, Repo, make_repo, ran

pytestmark = pytest.mark.slow

LAYOUTS = {  # config -> (fixture writer, folder under data/raw it writes into)
    "casme2_5class": (fixtures.casme2, "CASME2"),
    "casme2_3class": (fixtures.casme2, "CASME2"),
    "samm_5class": (fixtures.samm, ""),
    "mmew_4class": (fixtures.mmew, ""),
    "casme3_4class": (fixtures.casme3, "CASME3"),
}


def _configured_repo(path) -> Repo:
    """The tiny test repository with this project's conf/ and .dvc/config (Hydra on), committed."""
    repo = make_repo(path)
    shutil.copytree(PROJECT / "conf", repo.path / "conf")
    shutil.copy(PROJECT / ".dvc/config", repo.path / ".dvc/config")
    return repo


def _commit(repo: Repo) -> None:
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "state")


@pytest.mark.parametrize("config", LAYOUTS)
def test_data_set_config_runs_on_a_fixture_of_its_layout(tmp_path, config):
    repo = _configured_repo(tmp_path / "repo")
    writer, folder = LAYOUTS[config]
    layout = writer(repo.path / "data/raw" / folder if folder else repo.path / "data/raw")
    _commit(repo)

    # what `dvc exp run -S dataset=<config>` does first (its --dry runs in a temporary copy without data/raw)
    compose_and_dump(
        repo.path / "params.yaml", str(repo.path / "conf"), None, "config", str(repo.path), [f"dataset={config}"]
    )
    stages = set(repo.dvc("stage", "list", "--name-only").stdout.split())
    repo.dvc("dag")  # the graph builds
    params = repo.params()
    assert params["dataset"]["root"] == str(layout.root.relative_to(repo.path))
    assert params["dataset"]["labels"] == str(layout.labels.relative_to(repo.path))
    folds = {f"train@{s}-{seed}" for s in params["dataset"]["subjects"] for seed in params["train"]["seeds"]}
    name = params["dataset"]["name"]
    assert folds | {"ingest", f"cache@{name}", "report"} <= stages  # one fold stage per configured subject and seed
    assert not {s for s in stages if s.startswith(("synthesize@", "flow@"))}  # a real data set generates nothing

    # the shipped subject list is the real data set's; ingest names the fixture's instead
    failed = repo.dvc("repro", "ingest", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    listed = re.search(r"subjects: (\[.*\])", failed.stdout + failed.stderr)
    assert listed, failed.stdout + failed.stderr
    repo.set_params(**{"dataset.subjects": json.loads(listed.group(1))})
    repo.dvc("repro", "ingest")
    report = json.loads((repo.path / "reports/ingest.json").read_text())
    assert report["clips"] > 0 and report["dataset"]["format"] == params["dataset"]["format"]


@pytest.mark.parametrize("config,writer", [("samm_5class", fixtures.samm_release), ("smic_3class", fixtures.smic)])
def test_release_layout_ingests_with_the_shipped_config(tmp_path, config, writer):
    """The released facts (SAMM v2: 159 rows, 2 inconsistent; SMIC HS: 164 clips in SMIC_all_raw/HS)
    ingest under DVC with the shipped subject list and default settings, repairs listed."""
    repo = _configured_repo(tmp_path / "repo")
    layout = writer(repo.path / "data/raw")
    _commit(repo)
    compose_and_dump(
        repo.path / "params.yaml", str(repo.path / "conf"), None, "config", str(repo.path), [f"dataset={config}"]
    )
    assert repo.params()["dataset"]["root"] == str(layout.root.relative_to(repo.path))
    done = repo.dvc("repro", "ingest")
    report = json.loads((repo.path / "reports/ingest.json").read_text())
    expected = {
        "samm_5class": (136, 27, {"apex_outside": ["028/028_4_1", "032/032_3_1"]}),
        "smic_3class": (164, 16, {}),
    }[config]
    assert (report["clips"], len(report["subjects"])) == expected[:2] and report["rejected"] == []
    assert all(report["repaired"][rule] == ids for rule, ids in expected[2].items())
    if config == "smic_3class":
        assert report["data_root"] == "data/raw/SMIC/SMIC_all_raw/HS" and report["dataset"]["labels_sha256"] is None
        assert "subject folders found in data/raw/SMIC/SMIC_all_raw/HS" in done.stdout
    else:
        assert report["dataset"]["labels_file"] == "SAMM_Micro_FACS_Codes_v2.xlsx"
        assert len(report["dataset"]["labels_sha256"]) == 64


def test_casme2_paper_experiment_is_one_command(tmp_path):
    """README: `dvc exp run -S dataset=casme2_5class`; here shrunk to a 2-subject fixture and a tiny model."""
    repo = _configured_repo(tmp_path / "repo")
    repo.dvc("repro", "synthesize")  # CASME II-layout clips to stand in for the licensed data
    raw = repo.path / "data/raw/CASME2"
    shutil.copytree(repo.path / "data/synthetic/CASME2_RAW_selected", raw / "CASME2_RAW_selected")
    shutil.copy(repo.path / "data/synthetic/CASME2-coding-synthetic.xlsx", raw / "CASME2-coding-20140508.xlsx")
    _commit(repo)

    shrink = [
        "dataset.subjects=[sub01,sub02]",
        "model=mmnet_small",
        "input.size=32",
        "flow.size=32",
        "train.epochs=1",
        "train.batch_size=4",
    ]
    done = repo.dvc("exp", "run", "-n", "casme2-paper", "-S", "dataset=casme2_5class", *(f"-S{s}" for s in shrink))
    stages = ran(done.stdout)  # a real data set's run does only its own work: no synthetic set, no flow (difference)
    assert {"ingest", "landmarks@casme2", "cache@casme2", "report"} <= stages
    assert not {s for s in stages if s.startswith(("synthesize", "flow"))}, stages

    params = yaml.safe_load((repo.path / "params.yaml").read_text())
    assert params["dataset"]["name"] == "casme2" and params["dataset"]["protocol"] == "casme2_5class"
    assert (params["train"]["weight_decay"], params["train"]["augment"]["crop_padding"]) == (0.6, 15)  # paper
    manifest = (repo.path / "data/manifest.csv").read_text()
    assert "data/raw/CASME2/CASME2_RAW_selected" in manifest
    page = (repo.path / "reports/README.md").read_text()
    assert "data set **casme2** (casme2 layout), protocol **casme2_5class**, 4 clips in 2" in page
    table = json.loads(repo.dvc("exp", "show", "--json").stdout)
    names = {run["name"] for entry in table for exp in (entry.get("experiments") or []) for run in exp["revs"]}
    assert "casme2-paper" in names
