"""The LOSO report's figures: confusion matrices, per-subject accuracy, training curves.

Apart from mer.plots (the preprocessing contact sheets) so that changing a report figure
re-runs only the report stage.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mer.plots import plt, save


def confusion(path: str | Path, matrix: np.ndarray, classes: list[str], title: str) -> None:
    """Counts and row-normalised (recall) confusion matrices side by side; rows are the true class."""
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    side = 1.2 + 0.6 * len(classes)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.5, side), layout="constrained")
    for ax, values, name, fmt in ((axes[0], matrix, "counts", "d"), (axes[1], normalised, "row-normalised", ".2f")):
        ax.imshow(values, cmap="Blues", vmin=0, vmax=max(values.max(), 1e-9))
        for (r, c), value in np.ndenumerate(values):
            ax.text(c, r, format(value, fmt), ha="center", va="center", fontsize=8,
                    color="white" if value > values.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({name})", fontsize=9)
    save(fig, path)


def subject_bars(path: str | Path, per_subject: dict[str, dict], overall: float) -> None:
    """Test accuracy of each LOSO fold with its clip count, and the pooled accuracy as a line."""
    names = list(per_subject)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(names) + 1.5), 3))
    ax.bar(names, [per_subject[n]["accuracy"] for n in names], color="tab:blue")
    for x, name in enumerate(names):
        ax.text(x, per_subject[name]["accuracy"] + 0.01, str(per_subject[name]["clips"]), ha="center", fontsize=7)
    ax.axhline(overall, color="tab:red", lw=1, label=f"pooled {overall:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy (numbers: clips)")
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    ax.legend(fontsize=8, loc="lower right")
    save(fig, path)


def training_curves(path: str | Path, table: pd.DataFrame) -> None:
    """Mean and min-max band across folds of training loss and accuracy per epoch, with test accuracy."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, names in ((axes[0], ["train_loss"]), (axes[1], ["train_acc", "test_acc"])):
        for name in names:
            label = name if name != "test_acc" else "test_acc (not used to choose epochs)"
            ax.plot(table.epoch, table[f"{name}_mean"], label=label)
            ax.fill_between(table.epoch, table[f"{name}_min"], table[f"{name}_max"], alpha=0.2)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("loss (mean, min-max over folds)")
    axes[1].set_ylabel("accuracy")
    save(fig, path)
