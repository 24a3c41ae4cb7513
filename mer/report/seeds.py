"""Several training seeds, one LOSO run each: the figure a reader can trust is their mean and spread.

On small data the seed alone moves pooled accuracy by several clips, so `train.seeds` lists
the seeds, the fold stage is a DVC matrix over subject x seed, and the report summarises every
per-seed figure by mean, standard deviation (sample, ddof=1; absent with one seed: no spread
can be estimated from one run), minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mer import fold_store
from mer.fold_store import Folds
from mer.report import scores

PER_SEED = ("accuracy", "uf1", "uar", "weighted_f1", "optimistic_best_epoch", "paper_protocol")


def summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (left out for a single value), min and max."""
    array = np.asarray(values, dtype=np.float64)
    stats = {
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if len(array) > 1 else None,
        "min": float(array.min()),
        "max": float(array.max()),
    }
    return {k: v for k, v in stats.items() if v is not None}


def aggregate(runs: dict[int, Any], where: str = "metrics") -> Any:
    """Per-seed trees of the same shape -> one tree: floats become their summary over seeds; anything
    else (clip counts, supports, skipped clips) must be equal across seeds and is kept once."""
    values = list(runs.values())
    first = values[0]
    if isinstance(first, dict):
        for seed, value in runs.items():
            if not isinstance(value, dict) or value.keys() != first.keys():
                raise ValueError(
                    f"{where}: seed {seed} has keys {sorted(value) if isinstance(value, dict) else value}"
                    f", seed {next(iter(runs))} has {sorted(first)}"
                )
        return {key: aggregate({seed: value[key] for seed, value in runs.items()}, f"{where}.{key}") for key in first}
    if isinstance(first, float):
        return summary(values)
    if any(value != first for value in values):
        raise ValueError(f"{where} differs between seeds ({dict(runs)}); it should not depend on the seed")
    return first


def load_runs(folds: str | Path, seeds: Sequence[int], subjects: list[str]) -> dict[int, Folds]:
    """Every seed's LOSO run, read from <folds>/seed<n>/<subject>/; all must share one class list."""
    runs = {seed: fold_store.read(fold_store.seed_folder(folds, seed), subjects, seed) for seed in seeds}
    first = seeds[0]
    for seed, run in runs.items():
        if run.classes != runs[first].classes:
            raise ValueError(
                f"seed {seed}'s folds have classes {run.classes}, seed {first}'s {runs[first].classes}; "
                "re-run them all with `dvc repro`"
            )
    return runs


def evaluate(runs: dict[int, Folds], upstream: dict[str, int], parts: Sequence[str] = ()) -> dict[str, Any]:
    """The metrics file: each seed's scores.evaluate summarised over seeds, then the per-seed headline figures
    (`parts`: a composite's, scored apart too), and how many fold runs diverged over every seed (`diverged` lists
    them; a count, so the file's keys do not depend on which folds did)."""
    per_seed = {seed: scores.evaluate(folds, upstream, parts) for seed, folds in runs.items()}
    return {
        "seeds": len(runs),
        **aggregate(per_seed),
        "folds_diverged": len(diverged(runs)),
        "per_seed": {str(seed): {key: metrics[key] for key in PER_SEED} for seed, metrics in per_seed.items()},
    }


def diverged(runs: dict[int, Folds]) -> list[dict[str, Any]]:
    """Every seed's folds whose training loss ended above its first epoch's (scores.diverged): seed, subject and
    both losses, seed by seed in fold order."""
    return [
        {"seed": seed, "subject": subject, **losses}
        for seed, folds in runs.items()
        for subject, losses in scores.diverged(folds).items()
    ]


def pooled(runs: dict[int, Folds]) -> Folds:
    """All seeds' folds as one: predictions gain a `seed` column, curves are keyed `<subject>-<seed>` (stage names)."""
    classes = next(iter(runs.values())).classes
    predictions = pd.concat([run.predictions.assign(seed=seed) for seed, run in runs.items()], ignore_index=True)
    curves = {f"{subject}-{seed}": fold for seed, run in runs.items() for subject, fold in run.curves.items()}
    return Folds(classes=classes, predictions=predictions, curves=curves)
