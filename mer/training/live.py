"""A fold's training curves as DVCLive writes them, epoch by epoch, so they can be watched while it trains.

`dvc exp show`, `dvc plots show` and the VS Code extension read DVCLive's files; here they are
the fold stage's declared outputs (metrics and plots in dvc.yaml), so DVCLive neither writes a
dvc.yaml of its own nor saves an experiment, and it is not hooked up to the DVC repository at
all (see `_FoldLive`). Steps are epochs (from 1) and no timestamps are logged: the same run
writes the same bytes. The report reads the fold's curves.json, not these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SCALARS = ("lr", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")


def metric_name(key: str) -> str:
    """`train_loss` -> `train/loss`: DVCLive groups metrics by the part before the slash."""
    return key.replace("_", "/", 1)


@contextlib.contextmanager
def epoch_logger(directory: str | Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A callback for mer.training.loop.train_fold's `on_epoch`, writing into `directory` (emptied first)."""
    from dvclive import Live

    class _FoldLive(Live):
        """Live without its repository hook-up (dvclive 3.49.1, pinned: `Live._init_dvc`). With no dvc.yaml and no
        experiment to save it only names an experiment, yet it fails in a git repository without commits
        ("Empty git repo"), runs `dvc init` in a git repository that has no DVC, and `git add`s files under
        `dvc exp run`. The files a fold writes are the same either way."""

        def _init_dvc(self) -> None:
            pass

    with _FoldLive(str(directory), dvcyaml=None, save_dvc_exp=False, report=None) as live:

        def log(record: dict[str, Any]) -> None:
            live.step = record["epoch"]
            for key in SCALARS:
                if key in record:
                    live.log_metric(metric_name(key), float(record[key]))
            live.make_summary()

        yield log
