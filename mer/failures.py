"""Clips that a preprocessing stage could not handle: reported, and skipped only if params allow.

When a stage fails, DVC deletes its declared outputs, the stage's JSON report among them. So the
full list of what failed is also written to reports/errors/<stage>.json, outside DVC's outputs
(git-ignored), where it survives; a stage that succeeds removes its stale error report.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mer.io import write_json

ON_ERROR = ("fail", "skip")
ERRORS = Path("reports/errors")


class ClipError(Exception):
    """A clip-level fault (unreadable frame, no face, landmarks off the image, ...)."""


@dataclass(frozen=True)
class ClipFailure:
    sample_id: str
    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.sample_id}: {self.reason}"


def check(failures: list[ClipFailure], on_error: str, stage: str) -> None:
    """Raise listing every failure when `on_error` is `fail`; otherwise they are reported by the caller."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if failures and on_error == "fail":
        listing = "\n".join(f"  {f}" for f in failures[:50])
        message = f"{stage}: {len(failures)} clip(s) failed (set preprocess.on_error: skip to skip and report them)"
        path = error_report(stage, message, summary(failures)["failures"])
        more = f"\n  ... and {len(failures) - 50} more" if len(failures) > 50 else ""
        raise ClipError(f"{message}:\n{listing}{more}\nFull list: {path}")
    clear_error_report(stage)


def summary(failures: list[ClipFailure]) -> dict:
    """Counts by reason kind plus the full list, for the stage's JSON report."""
    kinds = Counter(f.reason.split(":")[0] for f in failures)
    return {
        "failed": len(failures),
        "failed_by_kind": dict(sorted(kinds.items())),
        "failures": [{"sample_id": f.sample_id, "stage": f.stage, "reason": f.reason} for f in failures],
    }


def error_report(stage: str, message: str, items: list[dict], folder: str | os.PathLike = ERRORS) -> Path:
    """Write why `stage` failed, every item included, to <folder>/<stage>.json; returns the path."""
    path = Path(folder) / f"{stage}.json"
    write_json(path, {"stage": stage, "error": message, "count": len(items), "items": items})
    return path


def clear_error_report(stage: str, folder: str | os.PathLike = ERRORS) -> None:
    """Remove <folder>/<stage>.json left by an earlier failed run (the stage has now succeeded)."""
    (Path(folder) / f"{stage}.json").unlink(missing_ok=True)
