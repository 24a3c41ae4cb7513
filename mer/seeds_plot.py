"""reports/seeds.png: every seed's pooled figure under each protocol, so the spread is seen, not only summarised."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mer.plots import plt, save

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
