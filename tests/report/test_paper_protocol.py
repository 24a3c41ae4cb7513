"""The paper's protocol against an independent computation (scikit-learn) on hand-made epochs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from mer.report.paper_protocol import class_counts, counts_f1, paper_protocol

# subject A: all epochs have 4 correct (the first is kept), epoch 2 has the best F1: they differ
A_LABELS = [0, 0, 0, 0, 1, 2]
A_EPOCHS = [
    [0, 0, 0, 0, 0, 0],  # 4 correct, F1 (8/10 + 0 + 0) / 3 = 0.2667
    [0, 0, 1, 2, 1, 2],  # 4 correct, F1 (4/6 + 2/3 + 2/3) / 3 = 0.6667 (best F1)
    [0, 0, 0, 1, 1, 0],
]  # 4 correct, F1 (6/8 + 2/3 + 0) / 3 = 0.4722
# subject B: epochs 2 and 3 tie on the best F1 and the official `>=` keeps the later one
B_LABELS = [1, 1, 2]
B_EPOCHS = [
    [1, 1, 0],  # 2 correct, F1 (0 + 1 + 0) / 3 = 0.3333
    [1, 0, 2],  # 2 correct, F1 (0 + 2/3 + 1) / 3 = 0.5556
    [0, 1, 2],
]  # 2 correct, the same F1


def curves(labels, epochs):
    return {"test_labels": labels, "epochs": [{"epoch": i + 1, "test_pred": p} for i, p in enumerate(epochs)]}


def official_f1(labels, preds):
    present = sorted(set(labels) | set(preds))
    return f1_score(labels, preds, labels=present, average="macro", zero_division=0)


def reference(folds: dict) -> dict:
    """Straight from the official loop's description, with scikit-learn's metrics."""
    correct, clips, chosen_labels, chosen_preds, epochs = 0, 0, [], [], {}
    for subject, (labels, preds_by_epoch) in folds.items():
        accs = [accuracy_score(labels, p, normalize=False) for p in preds_by_epoch]
        f1s = [official_f1(labels, p) for p in preds_by_epoch]
        best_f1_epoch = max(i for i, f in enumerate(f1s) if f == max(f1s))  # last of the ties
        correct += max(accs)
        clips += len(labels)
        chosen_labels += labels
        chosen_preds += preds_by_epoch[best_f1_epoch]
        epochs[subject] = (int(np.argmax(accs)) + 1, best_f1_epoch + 1)
    return {"accuracy": correct / clips, "uf1": official_f1(chosen_labels, chosen_preds), "epochs": epochs}


def test_matches_independent_computation_where_accuracy_and_f1_epochs_differ():
    folds = {"A": (A_LABELS, A_EPOCHS), "B": (B_LABELS, B_EPOCHS)}
    got = paper_protocol({s: curves(*f) for s, f in folds.items()}, num_classes=3)
    want = reference(folds)
    assert got["accuracy"] == pytest.approx(want["accuracy"])
    assert got["uf1"] == pytest.approx(want["uf1"])
    for subject, (acc_epoch, f1_epoch) in want["epochs"].items():
        assert (got["per_subject"][subject]["accuracy_epoch"], got["per_subject"][subject]["f1_epoch"]) == (
            acc_epoch,
            f1_epoch,
        )
    assert got["per_subject"]["A"]["accuracy_epoch"] == 1 and got["per_subject"]["A"]["f1_epoch"] == 2
    assert got["per_subject"]["B"]["f1_epoch"] == 3


def test_hand_computed_values():
    got = paper_protocol({"A": curves(A_LABELS, A_EPOCHS), "B": curves(B_LABELS, B_EPOCHS)}, num_classes=3)
    assert got["accuracy"] == pytest.approx(6 / 9)
    assert got["per_subject"]["A"]["f1"] == pytest.approx(2 / 3)
    # pooled per-class counts of the best-F1 epochs, A epoch 2 + B epoch 3, counted by hand
    tp = np.array([2, 1, 1]) + np.array([0, 1, 1])
    predicted = np.array([2, 2, 2]) + np.array([1, 1, 1])
    labelled = np.array([4, 1, 1]) + np.array([0, 2, 1])
    assert got["uf1"] == pytest.approx(np.mean(2 * tp / (predicted + labelled)))


def test_classes_absent_from_labels_and_predictions_are_left_out():
    counts = class_counts(np.array([0, 0, 2]), np.array([0, 2, 2]), num_classes=5)
    assert counts.tolist() == [[1, 0, 1, 0, 0], [1, 0, 2, 0, 0], [2, 0, 1, 0, 0]]
    assert counts_f1(counts) == pytest.approx((2 / 3 + 2 / 3) / 2)
