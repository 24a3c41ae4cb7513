"""The LOSO report's figures: confusion matrices, per-subject accuracy, training curves, per-seed figures.

Apart from mer.plots (the preprocessing contact sheets) so that changing a report figure
re-runs only the report stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
            ax.text(
                c,
                r,
                format(value, fmt),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > values.max() / 2 else "black",
            )
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({name})", fontsize=9)
    save(fig, path)


def subject_bars(path: str | Path, per_subject: dict[str, dict], overall: float) -> None:
    """Test accuracy of each LOSO fold with its clip count, and the pooled accuracy as a line."""
    names = list(per_subject)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.45 * len(names) + 3), 4.5), layout="constrained")
    bars = ax.bar(names, [per_subject[n]["accuracy"] for n in names], color="tab:blue", label="fold accuracy")
    ax.bar_label(bars, labels=[f"n={per_subject[n]['clips']}" for n in names], padding=2, fontsize=9)
    ax.axhline(overall, color="tab:red", lw=1.5, ls="--", label=f"pooled accuracy {overall:.3f}")
    ax.set_ylim(0, 1.12)
    ax.set_xlabel("left-out (test) subject")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy per LOSO fold (n = test clips of the subject)", fontsize=11)
    ax.tick_params(axis="x", rotation=90 if len(names) > 12 else 0, labelsize=9)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save(fig, path)


def training_curves(path: str | Path, table: pd.DataFrame) -> None:
    """Mean and min-max band across folds of training and test loss and accuracy per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    panels = ((axes[0], "loss", ["train_loss", "test_loss"]), (axes[1], "accuracy", ["train_acc", "test_acc"]))
    for ax, quantity, names in panels:
        for name, colour in zip(names, ("tab:blue", "tab:orange"), strict=True):
            ax.plot(table.epoch, table[f"{name}_mean"], color=colour, label=name.replace("_", " "))
            ax.fill_between(table.epoch, table[f"{name}_min"], table[f"{name}_max"], color=colour, alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{quantity} (mean, band: min-max over folds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=2, frameon=False)
    fig.suptitle("Training curves (test scores are shown only: they never choose the epoch)", fontsize=11)
    save(fig, path)


PROTOCOLS = (
    ("honest", None),
    ("best-accuracy epoch\n(optimistic)", "optimistic_best_epoch"),
    ("paper protocol\n(optimistic)", "paper_protocol"),
)
METRICS = (("accuracy", "accuracy"), ("uf1", "UF1"), ("uar", "UAR"), ("weighted_f1", "weighted F1"))


def per_seed(path: str | Path, seeds: dict[str, dict[str, Any]]) -> None:
    """One panel per metric: a dot per seed (labelled) and a bar at the mean, for each protocol that reports it."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.4), sharey=True, layout="constrained")
    for ax, (key, title) in zip(axes, METRICS, strict=True):
        names = []
        for x, (name, block) in enumerate(PROTOCOLS):
            scores = {seed: m if block is None else m[block] for seed, m in seeds.items()}
            values: dict[str, float] = {seed: s[key] for seed, s in scores.items() if key in s}
            names.append(name if values else f"{name}\n(not reported)")
            if not values:
                continue
            mean = sum(values.values()) / len(values)
            ax.bar(x, mean, width=0.6, color="tab:blue" if block is None else "tab:orange", alpha=0.35)
            for seed, value in values.items():
                ax.plot(x, value, "o", color="black", ms=4)
                ax.annotate(seed, (x, value), xytext=(5, 0), textcoords="offset points", fontsize=7, va="center")
        ax.set_xticks(range(len(PROTOCOLS)), names, fontsize=7)
        ax.set_title(f"{title}: per seed, bar = mean", fontsize=9)
        ax.set_ylim(0, 1.05)
    save(fig, path)
