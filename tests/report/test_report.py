"""Pooled LOSO metrics against hand-computed values, the optimistic protocol kept apart, the report page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mer import fold_store
from mer.fold_store import Folds
from mer.report import readme, scores, seeds

CLASSES = ["a", "b", "c", "d"]
# class b occurs only in s1's fold, class c only in s2's, class d nowhere
FOLDS = {
    "s1": {"labels": [0, 0, 1], "final": [0, 1, 1], "epochs": [[0, 0, 1], [0, 1, 1]]},
    "s2": {"labels": [0, 2, 2], "final": [0, 2, 2], "epochs": [[0, 0, 2], [0, 2, 2]]},
}


def _write_folds(folder) -> None:
    for subject, fold in FOLDS.items():
        (folder / subject).mkdir(parents=True)
        table = pd.DataFrame(
            {
                "sample_id": [f"{subject}/c{i}" for i in range(3)],
                "subject": subject,
                "label": fold["labels"],
                "pred": fold["final"],
            }
        )
        table.to_csv(folder / subject / "predictions.csv", index=False)
        epochs = [
            {
                "epoch": e + 1,
                "train_loss": 1.0 / (e + 1),
                "train_acc": 0.5 + 0.25 * e,
                "test_loss": 2.0 - 0.5 * e + (0.2 if subject == "s2" else 0.0),
                "test_acc": float(np.mean(np.equal(pred, fold["labels"]))),
                "test_pred": pred,
            }
            for e, pred in enumerate(fold["epochs"])
        ]
        curves = {
            "classes": CLASSES,
            "test_labels": fold["labels"],
            "epochs": epochs,
            "device": "cpu",
            "precision": "bf16" if subject == "s1" else "fp32",
        }
        (folder / subject / "curves.json").write_text(json.dumps(curves))


@pytest.fixture
def folds(tmp_path) -> Folds:
    _write_folds(tmp_path)
    return fold_store.read(tmp_path, ["s1", "s2"])


def test_pooled_scores_by_hand(folds):
    # pooled labels [0,0,1,0,2,2], predictions [0,1,1,0,2,2]
    # a: P 2/2, R 2/3, F1 0.8;  b: P 1/2, R 1/1, F1 2/3;  c: P 1, R 1, F1 1;  d: absent
    metrics = scores.evaluate(folds, upstream={})
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert metrics["uf1"] == pytest.approx((0.8 + 2 / 3 + 1) / 3)  # over the classes that occur
    assert metrics["uar"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert metrics["weighted_f1"] == pytest.approx((3 * 0.8 + 1 * 2 / 3 + 2 * 1) / 6)
    assert metrics["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert metrics["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert metrics["per_class"]["d"]["support"] == 0
    assert metrics["per_subject"] == {
        "s1": {"accuracy": pytest.approx(2 / 3), "clips": 3},
        "s2": {"accuracy": 1.0, "clips": 3},
    }
    assert (metrics["clips"], metrics["folds"]) == (6, 2)


def test_optimistic_figure_takes_each_subjects_best_epoch_and_stays_apart(folds):
    best = scores.optimistic_predictions(folds)
    # s1: epoch 1 is right on 3/3, its final epoch 2 on 2/3; s2: epoch 2 (3/3) beats epoch 1 (2/3)
    assert best.groupby("subject").epoch.first().to_dict() == {"s1": 1, "s2": 2}
    metrics = scores.evaluate(folds, upstream={})
    assert metrics["optimistic_best_epoch"]["accuracy"] == 1.0
    assert metrics["accuracy"] == pytest.approx(5 / 6)  # the honest figure is the final epoch's
    assert set(metrics["optimistic_best_epoch"]) == {"accuracy", "uf1", "uar", "weighted_f1"}


def test_missing_fold_names_the_subject(tmp_path):
    _write_folds(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"subject\(s\) s3; run `dvc repro` \(or `dvc repro train@s3`\)"):
        fold_store.read(tmp_path, ["s1", "s3"])


def test_curves_table_spreads_over_folds(folds):
    table = scores.curves_table(folds)
    assert table.epoch.tolist() == [1, 2]
    assert table.loc[0, "train_loss_mean"] == 1.0 and table.loc[1, "train_loss_mean"] == 0.5
    # test accuracy: epoch 1 s1 3/3, s2 2/3; epoch 2 s1 2/3, s2 3/3
    assert table.loc[1, "test_acc_min"] == pytest.approx(2 / 3) and table.loc[0, "test_acc_max"] == 1.0
    assert table.loc[0, "test_loss_mean"] == pytest.approx(2.1) and table.loc[1, "test_loss_max"] == pytest.approx(1.7)


PARAMS = {
    "dataset": {"name": "casme2", "format": "casme2", "protocol": "casme2_5class"},
    "model": {"name": "mmnet", "options": {}},
    "input": {"kind": "difference", "size": 224},
    "train": {
        "epochs": 70,
        "batch_size": 32,
        "lr": 8e-4,
        "weight_decay": 0.6,
        "class_weights": "none",
        "seeds": [1],
        "validation_subjects": 0,
    },
}


def test_skipped_counts_and_reasons_reach_metrics_and_page(folds):
    ingest = {
        "rejected_count": 2,
        "dropped_by_protocol": {"fear": 3, "sadness": 1},
        "rejected": [{"reason": "missing frames: img5.jpg"}, {"reason": "offset before onset: 9 < 12"}],
    }
    cache = {
        "lost": {
            "landmarks": {"failed": 1, "failed_by_kind": {"no face": 1}},
            "crop": {"failed": 0, "failed_by_kind": {}},
        }
    }
    counts = scores.skipped(ingest, cache)
    assert counts == {
        "total": 3,
        "ingest_rejected": 2,
        "landmarks_failed": 1,
        "crop_failed": 0,
        "dropped_by_protocol": 4,
    }
    reasons = scores.skip_reasons(ingest, cache)
    assert reasons == {"ingest: missing frames": 1, "ingest: offset before onset": 1, "landmarks: no face": 1}
    metrics = seeds.evaluate({1: folds}, counts)
    assert metrics["skipped"] == counts
    page = readme.render(metrics, PARAMS, "abc1234", reasons, scores.trained_on(folds))
    assert "3 clip(s) failed upstream (ingest rejected 2, landmarks 1, crop 0); 4 clip(s) had labels" in page
    assert "- landmarks: no face: 1" in page


def test_a_precomputed_data_set_counts_ingest_alone(folds):
    """No face stages ran: the cache report loses nothing, and the page names no face stage."""
    ingest = {"rejected_count": 1, "dropped_by_protocol": {}, "rejected": [{"reason": "file x.png not found"}]}
    counts = scores.skipped(ingest, {"lost": {}})
    assert counts == {"total": 1, "ingest_rejected": 1, "dropped_by_protocol": 0}
    metrics = seeds.evaluate({1: folds}, counts)
    page = readme.render(
        metrics, PARAMS, "abc1234", scores.skip_reasons(ingest, {"lost": {}}), scores.trained_on(folds)
    )
    assert "1 clip(s) failed upstream (ingest rejected 1); 0 clip(s) had labels" in page
    assert "- ingest: file x.png not found: 1" in page


def test_page_shows_both_figures_labelled_and_the_published_table(folds):
    metrics = seeds.evaluate(
        {1: folds},
        {"total": 0, "ingest_rejected": 0, "landmarks_failed": 0, "crop_failed": 0, "dropped_by_protocol": 0},
    )
    page = readme.render(metrics, PARAMS, "abc1234", {}, scores.trained_on(folds))
    assert "| **honest**: final epoch | 0.8333 |" in page
    assert "| optimistic: best-accuracy epoch per test subject | 1.0000 |" in page and "OPTIMISTIC" in page
    assert "| paper | 88.35 | 0.8676 |" in page and "code: abc1234" in page
    assert "model kept: final epoch" in page and "![confusion matrices](confusion.png)" in page
    assert "- trained on cpu, bf16 (1 fold); cpu, fp32 (1 fold)" in page


def test_a_fold_whose_training_loss_rose_is_listed_on_the_page_and_counted_in_the_metrics(tmp_path):
    """Seed 2's s2 ends above its first epoch's training loss (0.7 -> 0.9); every other fold falls (1.0 -> 0.5)."""
    for seed in (1, 2):
        _write_folds(tmp_path / f"seed{seed}")
    rising = tmp_path / "seed2" / "s2" / "curves.json"
    curves = json.loads(rising.read_text())
    curves["epochs"][0]["train_loss"], curves["epochs"][1]["train_loss"] = 0.7, 0.9
    rising.write_text(json.dumps(curves))
    runs = {seed: fold_store.read(tmp_path / f"seed{seed}", ["s1", "s2"]) for seed in (1, 2)}
    upstream = {"total": 0, "ingest_rejected": 0, "dropped_by_protocol": 0}
    metrics = seeds.evaluate(runs, upstream)
    assert metrics["folds_diverged"] == 1
    diverged = seeds.diverged(runs)
    assert diverged == [{"seed": 2, "subject": "s2", "first_train_loss": 0.7, "final_train_loss": 0.9}]
    params = {**PARAMS, "train": {**PARAMS["train"], "seeds": [1, 2]}}
    page = readme.render(metrics, params, "abc", {}, "cpu", diverged=diverged)
    assert "- **1 fold run(s) diverged**" in page and "## Diverged folds: 1" in page
    assert "| 2 | s2 | 0.7 | 0.9 |" in page
    quiet = seeds.evaluate({1: runs[1]}, upstream)
    assert quiet["folds_diverged"] == 0 and seeds.diverged({1: runs[1]}) == []
    assert "diverged" not in readme.render(quiet, PARAMS, "abc", {}, "cpu").lower()


def test_paper_protocol_row_is_the_official_computation_apart_from_the_best_accuracy_row(tmp_path):
    """s1's best-accuracy epoch (1, first of two with 3 hits) is not its best-F1 epoch (2): the official code takes
    accuracy from the one and F1 from the other; the best-accuracy row scores everything at epoch 1."""
    folds = {
        "s1": {"labels": [0, 0, 0, 1], "epochs": [[0, 0, 0, 0], [0, 0, 1, 1]]},
        "s2": {"labels": [0, 1], "epochs": [[0, 1], [0, 1]]},
    }
    for subject, fold in folds.items():
        (tmp_path / subject).mkdir()
        final = fold["epochs"][-1]
        table = pd.DataFrame(
            {
                "sample_id": [f"{subject}/c{i}" for i in range(len(final))],
                "subject": subject,
                "label": fold["labels"],
                "pred": final,
            }
        )
        table.to_csv(tmp_path / subject / "predictions.csv", index=False)
        epochs = [
            {
                "epoch": e + 1,
                "train_loss": 1.0,
                "train_acc": 1.0,
                "test_pred": pred,
                "test_acc": float(np.mean(np.equal(pred, fold["labels"]))),
            }
            for e, pred in enumerate(fold["epochs"])
        ]
        curves = {"classes": ["a", "b"], "test_labels": fold["labels"], "epochs": epochs}
        (tmp_path / subject / "curves.json").write_text(json.dumps(curves))
    metrics = scores.evaluate(fold_store.read(tmp_path, ["s1", "s2"]), upstream={})
    # official: correct 3 + 2 of 6; F1 from summed counts of s1 epoch 2 (TP 2,1 P 2,2 L 3,1) and s2 (TP 1,1 P 1,1
    # L 1,1): TP 3,2 P 3,3 L 4,2 -> mean(6/7, 4/5)
    assert metrics["paper_protocol"] == pytest.approx({"accuracy": 5 / 6, "uf1": (6 / 7 + 4 / 5) / 2})
    # best-accuracy epoch everywhere: labels [0,0,0,1,0,1], predictions [0,0,0,0,0,1] -> F1 a 8/9, b 2/3
    assert metrics["optimistic_best_epoch"]["uf1"] == pytest.approx((8 / 9 + 2 / 3) / 2)
    assert metrics["optimistic_best_epoch"]["accuracy"] == pytest.approx(5 / 6)


def test_megc2019_flow_page_shows_the_composite_beside_the_published_rows(folds):
    """STSTNet on MEGC 2019's composite: our honest and optimistic UF1/UAR beside See et al.'s and MEB's rows,
    each with its protocol; another model gets no borrowed row."""
    metrics = seeds.evaluate({1: folds}, {"total": 0, "ingest_rejected": 0, "dropped_by_protocol": 0})
    params = {**PARAMS, "dataset": {**PARAMS["dataset"], "protocol": "megc2019_flow_3class"}}
    page = readme.render({**metrics}, {**params, "model": {"name": "ststnet", "options": {}}}, "abc", {}, "cpu")
    assert "## Beside the published figures (composite)" in page
    assert f"| honest: final epoch | {metrics['uf1']['mean']:.4f} |" in page
    assert "| MEGC 2019 summary (See et al. 2019) | LOSO, as the STSTNet authors ran it | 0.7353 | 0.7605 |" in page
    assert "| MEB (Varanka et al. 2023) | LOSO, epoch picked on the test subject (optimistic) | 0.7740 |  |" in page
    other = readme.render(metrics, {**params, "model": {"name": "off_apexnet", "options": {}}}, "abc", {}, "cpu")
    assert "no published figure for model 'off_apexnet'" in other and "0.7353" not in other
