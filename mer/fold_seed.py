"""One fold's training seed: the checked `train.seeds` list and each seed's folders.

Apart from mer.seeds (the report's aggregation over seeds) so that the fold stage runs, and
depends on, nothing of the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
