"""Spotting scored as MEGC scores it: a spotted interval is a true positive when its IoU with a labelled
interval is at least 0.5, each labelled interval matching at most one spotted interval; the other spotted
intervals are false positives, the unmatched labelled ones false negatives. Intervals are inclusive frame
ranges [onset, offset]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

IOU_HIT = 0.5


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two inclusive frame ranges (onset, offset)."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def match(spotted: Sequence[tuple[int, int]], labelled: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each spotted interval, the index of the labelled interval it hits, or None. Pairs are taken in
    decreasing IoU, so a labelled interval goes to the spotted one overlapping it most."""
    pairs = sorted(
        ((iou(s, g), i, j) for i, s in enumerate(spotted) for j, g in enumerate(labelled)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    hits: list[int | None] = [None] * len(spotted)
    taken: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < IOU_HIT:
            break
        if hits[i] is None and j not in taken:
            hits[i] = j
            taken.add(j)
    return hits


def counts(spotted: Sequence[tuple[int, int]], labelled: Sequence[tuple[int, int]]) -> dict[str, int]:
    """TP, FP, FN of one recording."""
    tp = sum(hit is not None for hit in match(spotted, labelled))
    return {"tp": tp, "fp": len(spotted) - tp, "fn": len(labelled) - tp}


def scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 (0 where nothing was spotted or labelled, as MEGC's tables show them)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def error_summary(errors: Sequence[float]) -> dict[str, Any]:
    """|apex error| in frames as the reports give it: mean, p90 (4 decimals), max and how many are exact; mean,
    p90 and max are None when there are no errors."""
    e = np.asarray(errors, float)
    if not e.size:
        return {"mean": None, "p90": None, "max": None, "exact": 0}
    return {
        "mean": round(float(e.mean()), 4),
        "p90": round(float(np.percentile(e, 90)), 4),
        "max": int(e.max()),
        "exact": int((e == 0).sum()),
    }
