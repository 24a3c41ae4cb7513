"""Several seeds: each seed's figures summarised by hand-checked mean, sample std, min and max; one seed has no std;
counts must agree across seeds; the fold stage's config and params leave `train.seeds` out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mer.fold_store import seed_folder, seeds_of
from mer.report import readme, scores, seeds
from mer.training.loop import fold_config

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["a", "b", "c"]
LABELS = {"s1": [0, 0, 1], "s2": [0, 2, 2]}
# final predictions per seed: seed 7 gets 5 of 6 clips right, seed 8 all 6, seed 9 4 of 6
FINAL = {
    7: {"s1": [0, 1, 1], "s2": [0, 2, 2]},
    8: {"s1": [0, 0, 1], "s2": [0, 2, 2]},
    9: {"s1": [0, 1, 1], "s2": [0, 0, 2]},
}
EPOCHS = {"s1": [[0, 0, 1], [0, 1, 1]], "s2": [[0, 0, 2], [0, 2, 2]]}
NO_SKIPS = {"total": 0, "ingest_rejected": 0, "landmarks_failed": 0, "crop_failed": 0, "dropped_by_protocol": 0}
PARAMS = {
    "dataset": {"name": "synthetic", "format": "casme2", "protocol": "synthetic_4class"},
    "model": {"name": "mmnet", "options": {}},
    "input": {"kind": "difference", "size": 112},
    "train": {
        "epochs": 2,
        "batch_size": 8,
        "lr": 8e-4,
        "weight_decay": 0.01,
        "class_weights": "none",
        "seeds": [7, 8, 9],
        "validation_subjects": 0,
    },
}


def _write(folds: Path, seed: int) -> None:
    for subject, labels in LABELS.items():
        folder = seed_folder(folds, seed) / subject
        folder.mkdir(parents=True)
        pd.DataFrame(
            {
                "sample_id": [f"{subject}/c{i}" for i in range(3)],
                "subject": subject,
                "label": labels,
                "pred": FINAL[seed][subject],
            }
        ).to_csv(folder / "predictions.csv", index=False)
        epochs = [
            {
                "epoch": e + 1,
                "train_loss": 1.0,
                "train_acc": 0.5,
                "test_pred": pred,
                "test_acc": sum(p == y for p, y in zip(pred, labels, strict=True)) / len(labels),
            }
            for e, pred in enumerate(EPOCHS[subject])
        ]
        (folder / "curves.json").write_text(
            json.dumps(
                {"classes": CLASSES, "test_labels": labels, "epochs": epochs, "device": "cpu", "precision": "fp32"}
            )
        )


@pytest.fixture
def folds(tmp_path) -> Path:
    for seed in FINAL:
        _write(tmp_path, seed)
    return tmp_path


def test_mean_sample_std_min_max_over_seeds_by_hand(folds):
    metrics = seeds.evaluate(seeds.load_runs(folds, [7, 8, 9], ["s1", "s2"]), NO_SKIPS)
    accuracies = [5 / 6, 1.0, 4 / 6]
    mean = sum(accuracies) / 3
    std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / 2)  # ddof=1
    assert metrics["accuracy"] == pytest.approx({"mean": mean, "std": std, "min": 4 / 6, "max": 1.0})
    assert metrics["seeds"] == 3 and (metrics["clips"], metrics["folds"]) == (6, 2)  # counts per seed, kept once
    assert metrics["skipped"] == NO_SKIPS
    # s1's accuracy: 2/3, 1, 2/3 over the seeds; class a's support is 3 whatever the seed
    assert metrics["per_subject"]["s1"]["accuracy"]["mean"] == pytest.approx(7 / 9)
    assert metrics["per_subject"]["s1"]["clips"] == 3 and metrics["per_class"]["a"]["support"] == 3
    assert metrics["per_class"]["c"]["recall"] == pytest.approx(
        {"mean": 5 / 6, "std": math.sqrt(1 / 12), "min": 0.5, "max": 1.0}
    )
    assert [metrics["per_seed"][s]["accuracy"] for s in ("7", "8", "9")] == pytest.approx(accuracies)
    # the epochs are the same in every seed here: the optimistic figures have no spread, std exactly 0
    assert metrics["optimistic_best_epoch"]["accuracy"] == {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}
    assert set(metrics["paper_protocol"]) == {"accuracy", "uf1"}


def test_one_seed_has_no_std_and_the_page_says_so(folds):
    metrics = seeds.evaluate(seeds.load_runs(folds, [8], ["s1", "s2"]), NO_SKIPS)
    assert metrics["accuracy"] == {"mean": 1.0, "min": 1.0, "max": 1.0}
    page = readme.render(
        metrics, {**PARAMS, "train": {**PARAMS["train"], "seeds": [8]}}, "abc1234", {}, "cpu, fp32 (2 folds)"
    )
    assert "one seed, so no spread: std not reported" in page
    assert "| **honest**: final epoch | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in page


def test_page_shows_mean_std_range_per_protocol_and_seed(folds):
    runs = seeds.load_runs(folds, [7, 8, 9], ["s1", "s2"])
    metrics = seeds.evaluate(runs, NO_SKIPS)
    page = readme.render(metrics, PARAMS, "abc1234", {}, scores.trained_on(seeds.pooled(runs)))
    assert "## Pooled over all folds: mean ± sample std over 3 seeds (min-max)" in page
    assert f"| **honest**: final epoch | 0.8333 ± {math.sqrt(1 / 36):.4f} (0.6667-1.0000) |" in page
    assert "| optimistic: best-accuracy epoch per test subject | 1.0000 ± 0.0000 (1.0000-1.0000) |" in page
    paper_row = next(line for line in page.splitlines() if line.startswith("| **paper protocol**"))
    assert paper_row.endswith("| not reported | not reported |")  # the official code reports accuracy and F1 only
    assert "The rows differ only in which epoch" in page and "PAPER PROTOCOL (OPTIMISTIC)" in page
    assert "| 9 | 0.6667 |" in page and "![per-seed figures](seeds.png)" in page
    assert "- trained on cpu, fp32 (6 folds)" in page and "seeds [7, 8, 9]" in page


def test_a_missing_seed_names_its_stage(folds):
    with pytest.raises(
        FileNotFoundError,
        match=r"seed5 for subject\(s\) s1, s2; run `dvc repro` "
        r"\(or `dvc repro train@s1-5`\)",
    ):
        seeds.load_runs(folds, [7, 5], ["s1", "s2"])


def test_counts_that_differ_between_seeds_are_an_error():
    runs = {7: {"clips": 6, "accuracy": 0.5}, 8: {"clips": 5, "accuracy": 0.6}}
    with pytest.raises(ValueError, match=r"metrics.clips differs between seeds \(\{7: 6, 8: 5\}\)"):
        seeds.aggregate(runs)


def test_pooled_keeps_every_seeds_folds_apart(folds):
    pooled = seeds.pooled(seeds.load_runs(folds, [7, 9], ["s1", "s2"]))
    assert list(pooled.curves) == ["s1-7", "s2-7", "s1-9", "s2-9"]
    assert pooled.predictions.groupby("seed").size().to_dict() == {7: 6, 9: 6}


def test_fold_config_takes_one_seed_and_checks_the_list():
    train = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    assert train["seeds"] == [7, 8, 9]
    assert fold_config(train, 8).seed == 8 and fold_config(train, 8).epochs == train["epochs"]
    for bad, message in (
        ([], "non-empty list of integers"),
        ([7, "8"], "non-empty list of integers"),
        ([7, 7], "lists a seed twice: \\[7, 7\\]"),
    ):
        with pytest.raises(ValueError, match=message):
            seeds_of({"seeds": bad})


def test_fold_stage_reads_every_train_key_but_seeds():
    """Adding a seed must not re-run the other seeds' folds, and every other key must re-run them."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    train = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    assert stage["params"] == ["input", "model"] + [f"train.{key}" for key in train if key != "seeds"]
    assert stage["matrix"] == {"subject": "${dataset.subjects}", "seed": "${train.seeds}"}


def test_inner_validation_is_reported_the_same_way(folds):
    metrics = seeds.evaluate(seeds.load_runs(folds, [7, 8, 9], ["s1", "s2"]), NO_SKIPS)
    params = {**PARAMS, "train": {**PARAMS["train"], "validation_subjects": 1}}
    page = readme.render(metrics, params, "abc1234", {}, "cpu, fp32 (6 folds)")
    assert "| **honest**: epoch chosen on 1 held-out training subject(s) | 0.8333 ± " in page
    assert "model kept: epoch chosen on 1 held-out training subject(s)" in page
