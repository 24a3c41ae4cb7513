"""A LOSO fold's outputs, the files `train@<subject>-<seed>` hands to `report`: written by `write` (one fold),
read by `read` (one seed's folds, for mer.report.seeds); and the checked `train.seeds` list that names each
seed's folders (<folds>/seed<n>/). The model files are loaded back by mer.training.fold_model (for `attention`
and `mer predict`), which checks them against the run's settings.

Per subject (the left-out one), inside its seed's folders:
- `<models>/<subject>.pt`: the kept model's state dict (torch.save; load with weights_only=True).
- `<reports>/<subject>/predictions.csv`: one row per test clip: `sample_id`, `subject`, `label`
  and `pred` (class indices), `prob_<class>` per class (6 decimals).
- `<reports>/<subject>/curves.json`: `classes`, `test_labels`, `epochs` (per epoch `epoch`,
  `train_loss`, `train_acc`, `test_acc`, `test_pred`), `selected_epoch`, `selection`, `device`,
  `precision` and `threads` (as mer.training.device resolved them), the configs the fold was trained
  with, the sample ids of each split, and `diverged` (the final epoch's training loss above the first's:
  mer.training.loop.diverged).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mer.io import atomic_path, read_json, write_bytes, write_json

PREDICTIONS, CURVES = "predictions.csv", "curves.json"


def seed_folder(folds: str | Path, seed: int) -> Path:
    """Where one seed's folds live: <folds>/seed<n>/<subject>/."""
    return Path(folds) / f"seed{seed}"


def seeds_of(train: dict[str, Any]) -> list[int]:
    """The `train.seeds` list, checked: integers, at least one, no repeats."""
    seeds = train.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"train.seeds must be a non-empty list of integers, e.g. [7, 8, 9]; got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"train.seeds lists a seed twice: {seeds}")
    return seeds


@dataclass(frozen=True)
class Folds:
    """Every fold's outputs: pooled predictions (one row per test clip) and each fold's curves."""

    classes: list[str]
    predictions: pd.DataFrame
    curves: dict[str, dict[str, Any]]


def write(
    models: str | Path,
    reports: str | Path,
    subject: str,
    state_dict: dict[str, Any],
    predictions: pd.DataFrame,
    curves: dict[str, Any],
) -> None:
    """Write the fold's outputs, each atomically (an interrupted run leaves no file DVC would trust).

    The checkpoint is serialised in memory first: torch.save names the archive's inner folder
    after the file, and a random temporary name would make identical weights hash differently.
    """
    import torch  # only the writer needs it: `report` reads folds without loading torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    write_bytes(Path(models) / f"{subject}.pt", buffer.getvalue())
    folder = Path(reports) / subject
    with atomic_path(folder / PREDICTIONS, ".csv") as tmp:
        predictions.to_csv(tmp, index=False, float_format="%.6f")
    write_json(folder / CURVES, curves)


def read(folder: str | Path, subjects: list[str], seed: int | None = None) -> Folds:
    """Read <folder>/<subject>/{predictions.csv,curves.json} for every subject, in order (one seed's run)."""
    folder = Path(folder)
    missing = [s for s in subjects if not (folder / s / PREDICTIONS).exists() or not (folder / s / CURVES).exists()]
    if missing:
        raise FileNotFoundError(
            f"no finished fold in {folder} for subject(s) {', '.join(missing)}; "
            f"run `dvc repro` (or `dvc repro train@{missing[0]}{'' if seed is None else f'-{seed}'}`)"
        )
    curves = {s: read_json(folder / s / CURVES) for s in subjects}
    classes = curves[subjects[0]]["classes"]
    for subject, fold in curves.items():
        if fold["classes"] != classes:
            raise ValueError(f"fold {subject} has classes {fold['classes']}, fold {subjects[0]} has {classes}")
    predictions = pd.concat([pd.read_csv(folder / s / PREDICTIONS) for s in subjects], ignore_index=True)
    return Folds(classes=classes, predictions=predictions, curves=curves)
