"""DVC stage `spot`: spot micro-expressions in the synthetic long recordings and score them against their truth
(MEGC interval scores, apex error inside the labelled intervals)."""

from __future__ import annotations

import argparse
import csv

from mer.face.landmarks import DlibDetector
from mer.io import atomic_path, load_params, read_json, write_json
from mer.lifecycle import exit_with_parent
from mer.spotting.evaluate import ROW_COLUMNS, evaluate
from mer.spotting.spotter import SpotConfig


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, help="the synthesize_long stage's folder")
    parser.add_argument("--metrics", required=True, help="JSON: P/R/F1, counts, apex error")
    parser.add_argument("--intervals", required=True, help="CSV: one row per spotted interval")
    args = parser.parse_args()

    config = SpotConfig.from_params(load_params(args.params)["spot"])
    meta = read_json(f"{args.data}/synthetic_long.json")
    result = evaluate(args.data, meta, config, DlibDetector(upsample=1))
    metrics = result.metrics
    write_json(args.metrics, metrics)
    with atomic_path(args.intervals) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ROW_COLUMNS)
        writer.writerows(result.rows)
    print(
        f"spot: {metrics['tp']} of {metrics['events']} micro-expressions found, {metrics['fp']} false, "
        f"{metrics['blinks_reported']} of {metrics['blinks']} blinks reported; precision {metrics['precision']}, "
        f"recall {metrics['recall']}, F1 {metrics['f1']}; apex error mean {metrics['apex_error_mean']} "
        f"p90 {metrics['apex_error_p90']} frames; {result.seconds_per_video_minute:.1f} s per minute of video"
    )


if __name__ == "__main__":
    main()
