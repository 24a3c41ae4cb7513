"""The spotters measured on recordings whose truth is known (the synthetic long recordings): every recording
spotted, its intervals scored against the labels (scoring.py), each labelled apex re-found inside its
labelled interval; counts pooled over recordings as MEGC pools them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mer.datasets.long_recordings import Event, read_labels
from mer.face.landmarks import Detector
from mer.spotting.recording import load
from mer.spotting.scoring import counts, error_summary, iou, match, scores
from mer.spotting.spotter import Interval, SpotConfig, apex_in_interval, spot

ROW_COLUMNS = ["recording", "onset", "apex", "offset", "score", "region", "hit", "iou", "blink"]


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]  # deterministic: the stage's metrics file
    rows: list[list[Any]]  # one per spotted interval, ROW_COLUMNS
    seconds_per_video_minute: float  # wall clock of loading, spotting and the apexes (printed, not a metric)


def evaluate(root: str | Path, meta: dict, config: SpotConfig, detector: Detector) -> Evaluation:
    """The spotters on the recordings under `root` (labels.csv, recordings/<sub>/) described by `meta` (their
    synthetic_long.json: frame rate, blinks)."""
    root = Path(root)
    labels = read_labels(root / "labels.csv")
    per_recording: dict[str, dict[str, Any]] = {}
    rows: list[list[Any]] = []
    apex_errors: list[int] = []
    seconds = frames = 0.0
    for sub, info in meta["recordings"].items():
        truth = labels.get(sub, [])
        started = time.perf_counter()
        recording = load(root / "recordings" / sub, detector, fps=meta["fps"])
        result = spot(recording, config)
        found = [abs(apex_in_interval(recording, e.onset, e.offset, config.flow) - e.apex) for e in truth]
        seconds += time.perf_counter() - started
        frames += len(recording.numbers)
        spotted = sorted(result.intervals, key=lambda i: i.onset)
        spans = [(i.onset, i.offset) for i in spotted]
        hits = match(spans, [(e.onset, e.offset) for e in truth])
        blinks = [(b["onset"], b["offset"]) for b in info["blinks"]]
        for interval, hit in zip(spotted, hits, strict=True):
            rows.append(_row(sub, interval, hit, truth, blinks))
        apex_errors += found
        per_recording[sub] = {
            **counts(spans, [(e.onset, e.offset) for e in truth]),
            "blinks_reported": sum(row[-1] for row in rows if row[0] == sub),
            "apex_errors": found,
            "threshold_px": round(result.threshold, 4),
        }
    pooled = {key: sum(r[key] for r in per_recording.values()) for key in ("tp", "fp", "fn", "blinks_reported")}
    errors = error_summary(apex_errors)
    metrics = {
        **pooled,
        **{key: round(value, 4) for key, value in scores(pooled["tp"], pooled["fp"], pooled["fn"]).items()},
        "apex_error_mean": errors["mean"],
        "apex_error_p90": errors["p90"],
        "events": len(apex_errors),
        "blinks": sum(len(info["blinks"]) for info in meta["recordings"].values()),
        "fps": meta["fps"],
        "recordings": per_recording,
    }
    return Evaluation(metrics, rows, seconds / (frames / meta["fps"]) * 60)


def _row(sub: str, interval: Interval, hit: int | None, truth: list[Event], blinks: list[tuple[int, int]]) -> list[Any]:
    span = (interval.onset, interval.offset)
    best = max((iou(span, (e.onset, e.offset)) for e in truth), default=0.0)
    blink = any(iou(span, b) > 0 for b in blinks)
    return [
        sub,
        interval.onset,
        interval.apex,
        interval.offset,
        round(interval.score, 4),
        interval.region,
        hit is not None,
        round(best, 4),
        blink,
    ]
