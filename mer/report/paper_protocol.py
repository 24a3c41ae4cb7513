"""The figure the MMNet paper reports, computed exactly as its official code computes it.

The official loop (muse1998/MMNet, `CASME2_5.py`, `run_training`) scores every epoch on the
test subject and keeps, per subject and independently of each other:
- the largest number of correct test clips over the epochs (accuracy), and
- the per-class counts (true positives, predictions, labels) of the epoch with the best
  subject F1, the later epoch winning ties (`AVG_F1 >= max_f1`).
A subject's F1 is the mean over the classes that occur in its labels or its predictions of
2 TP / (predicted + labelled). Accuracy pools the best counts; UF1 is the same mean taken
over the summed per-class counts of the best-F1 epochs.

So the two published numbers may come from different epochs of the same subject, and both
from epochs chosen on the test subject itself: an optimistic figure, kept apart from the
honest one and labelled so. Inputs are the per-epoch test predictions that every fold
records (`curves.json`: `test_labels`, `epochs[i].test_pred`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

NOTE = (
    "PAPER PROTOCOL (OPTIMISTIC): per test subject, accuracy from the epoch with the most correct clips and "
    "F1 from the epoch with the best F1, both chosen on that subject's own test clips, as the official MMNet "
    "code does; shown for comparison, never the result"
)


def class_counts(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(3, C): true positives, predictions and labels per class."""
    hits = preds[preds == labels]
    return np.stack(
        [
            np.bincount(hits, minlength=num_classes),
            np.bincount(preds, minlength=num_classes),
            np.bincount(labels, minlength=num_classes),
        ]
    )


def counts_f1(counts: np.ndarray) -> float:
    """The official F1: mean of 2 TP / (P + L) over the classes with any prediction or label."""
    tp, predicted, labelled = counts
    present = (predicted + labelled) > 0
    return float(np.mean(2 * tp[present] / (predicted[present] + labelled[present])))


def paper_protocol(curves: Mapping[str, Mapping[str, Any]], num_classes: int) -> dict[str, Any]:
    """Accuracy, UF1 and the epochs they came from, per subject and pooled, as the official code reports them."""
    correct, clips = 0, 0
    pooled = np.zeros((3, num_classes), dtype=np.int64)
    subjects = {}
    for subject, fold in curves.items():
        labels = np.asarray(fold["test_labels"], dtype=np.int64)
        epochs: Sequence[Mapping[str, Any]] = fold["epochs"]
        best_correct, acc_epoch = -1, 0
        best_f1, f1_epoch, f1_counts = -1.0, 0, np.zeros((3, num_classes), dtype=np.int64)
        for epoch in epochs:
            preds = np.asarray(epoch["test_pred"], dtype=np.int64)
            hits = int((preds == labels).sum())
            if hits > best_correct:
                best_correct, acc_epoch = hits, epoch["epoch"]
            counts = class_counts(labels, preds, num_classes)
            f1 = counts_f1(counts)
            if f1 >= best_f1:
                best_f1, f1_epoch, f1_counts = f1, epoch["epoch"], counts
        correct += best_correct
        clips += len(labels)
        pooled += f1_counts
        subjects[subject] = {
            "accuracy": best_correct / len(labels),
            "accuracy_epoch": acc_epoch,
            "f1": best_f1,
            "f1_epoch": f1_epoch,
            "clips": len(labels),
        }
    return {"accuracy": correct / clips, "uf1": counts_f1(pooled), "per_subject": subjects}
