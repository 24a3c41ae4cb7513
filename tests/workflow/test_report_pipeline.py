"""Issues 5 and 13 under real DVC: metrics over seeds for `dvc metrics diff`, plots for `dvc plots diff`, experiments
(`-S train.seeds=[7]` re-runs only the report)."""

from __future__ import annotations

import json

import pytest

from tests.workflow.conftest import ran

pytestmark = pytest.mark.slow

OUTPUTS = [
    "metrics.json",
    "predictions.csv",
    "curves.csv",
    "confusion.png",
    "subjects.png",
    "curves.png",
    "seeds.png",
    "README.md",
]
FOLDS = {f"train@{subject}-{seed}" for subject in ("sub01", "sub02") for seed in (7, 8)}


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_metrics_diff_plots_diff_and_experiments(repo):
    repo.set_params(
        **{
            "synthesize.clips_per_class": 3,  # 12 clips: enough for training to move the metrics
            "train.seeds": [7, 8],
        }
    )
    assert "report" in ran(repo.dvc("repro").stdout)
    for name in OUTPUTS:
        assert (repo.path / "reports" / name).stat().st_size > 0, name
    shown = json.loads(repo.dvc("metrics", "show", "--json").stdout)
    before = json.loads((repo.path / "reports/metrics.json").read_text())
    assert shown[""]["data"]["reports/metrics.json"]["data"] == before
    page = (repo.path / "reports/README.md").read_text()
    assert "**synthetic_4class**, 12 clips in 2 leave-one-subject-out folds, each trained with 2 seed(s)" in page
    assert set(before["accuracy"]) == {"mean", "std", "min", "max"} and set(before["per_seed"]) == {"7", "8"}
    assert before["accuracy"]["min"] == min(before["per_seed"][s]["accuracy"] for s in ("7", "8"))
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "baseline")

    repo.set_params(**{"train.epochs": 15})
    assert ran(repo.dvc("repro").stdout) == FOLDS | {
        "attention@synthetic",
        "report",
    }  # attention: seed 7's models changed
    after = json.loads((repo.path / "reports/metrics.json").read_text())
    changed = {k for k, v in _flat(after).items() if _flat(before).get(k) != v}
    assert changed, f"the param change left every metric as it was: {before}"
    diff = json.loads(repo.dvc("metrics", "diff", "--json").stdout)["reports/metrics.json"]
    assert set(diff) == changed
    for key in changed:
        assert diff[key]["old"] == _flat(before)[key] and diff[key]["new"] == _flat(after)[key]

    rendered = repo.dvc("plots", "diff", "HEAD", "-o", "plots_html")
    html = (repo.path / "plots_html" / "index.html").read_text()
    assert "index.html" in rendered.stdout and "Pooled LOSO confusion" in html and "Training curves" in html

    one_seed = repo.dvc("exp", "run", "-S", "train.seeds=[7]", "-n", "one-seed")
    assert ran(one_seed.stdout) == {"report"}  # seed 7's folds are cached
    table = json.loads(repo.dvc("exp", "show", "--json").stdout)
    experiments = [exp for entry in table for exp in (entry.get("experiments") or [])]
    runs = {run["name"]: run for exp in experiments for run in exp["revs"]}
    data = runs["one-seed"]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["seeds"] == [7]
    shown = data["metrics"]["reports/metrics.json"]["data"]
    assert shown["accuracy"] == {
        "mean": after["per_seed"]["7"]["accuracy"],
        "min": after["per_seed"]["7"]["accuracy"],
        "max": after["per_seed"]["7"]["accuracy"],
    }  # one seed: no std
