"""Clips that a preprocessing stage could not handle: reported, and skipped only if params allow."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

ON_ERROR = ("fail", "skip")


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
        raise ClipError(f"{stage}: {len(failures)} clip(s) failed (set preprocess.on_error: skip to skip and "
                        f"report them):\n{listing}")


def summary(failures: list[ClipFailure]) -> dict:
    """Counts by reason kind plus the full list, for the stage's JSON report."""
    kinds = Counter(f.reason.split(":")[0] for f in failures)
    return {"failed": len(failures), "failed_by_kind": dict(sorted(kinds.items())),
            "failures": [{"sample_id": f.sample_id, "stage": f.stage, "reason": f.reason} for f in failures]}
