"""Class probabilities of a run's trained models for one new clip: `mer predict CLIP --onset N --apex M`.

CLIP is a folder of frames, numbered by the last number in each file name (img46.jpg is frame 46), or a
video file OpenCV can read (mp4, avi, ...), whose frames are numbered from 0. The clip takes the
pipeline's own code with the run's params.yaml: landmarks of the reference frame (`landmarks.frame`:
the first frame ingest would keep, i.e. the first at or after onset - ingest.margin_frames, or the
onset), an LWM transform onto the run's template (data/landmarks.h5), the eye-based crop, and the model
input exactly as evaluation builds it. A frame folder of a clip the run saw gives its input bit for bit.

Onset and apex are yours, or, with `--spot`, found by the spotter (mer/spotting/, README "Spotting") in a
long recording: each spotted interval is classified from its onset and apex, one row per interval (`--csv FILE`
writes them; `--sheet PNG` draws each interval's onset and apex faces). The probabilities are the mean over
every LOSO fold model of every seed (models/seed<n>/<subject>.pt) unless `--model FILE` names one (a fold's,
or models/all.pt of the optional final@all stage). Only input kind `difference` (apex - onset) is computed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="a folder of numbered frames (img46.jpg ...) or a video file (frames from 0)")
    parser.add_argument("--onset", type=int, help="onset frame number (required without --spot)")
    parser.add_argument("--apex", type=int, help="apex frame number (required without --spot)")
    parser.add_argument(
        "--spot", action="store_true", help="find the micro-expressions of a long recording, then classify each"
    )
    parser.add_argument("--fps", type=float, help="with --spot: the frame rate (required for a frame folder)")
    parser.add_argument("--csv", metavar="FILE", help="with --spot: also write one row per spotted interval to FILE")
    parser.add_argument(
        "--sheet",
        metavar="PNG",
        help="with --spot: also draw each interval's onset and apex faces and their difference",
    )
    parser.add_argument(
        "--model",
        help="one model file (a fold's models/seed7/sub01.pt, the final models/all.pt, ...); "
        "default: the mean over every LOSO fold model of every seed in --models/seed*/",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the result as JSON to FILE (`-`: JSON on stdout only)"
    )
    parser.add_argument("--params", default="params.yaml", help="the run's params (landmarks, normalise, crop, ingest)")
    parser.add_argument("--landmarks", default="data/landmarks.h5", help="the run's template face")
    parser.add_argument("--models", default="models", help="folder of the run's seed<n>/<subject>.pt fold models")
    parser.add_argument("--folds", default="reports/folds", help="folder of the folds' seed<n>/<subject>/curves.json")


def run(args: argparse.Namespace) -> int:
    if args.spot and (args.onset is not None or args.apex is not None):
        print("mer predict: --spot finds onset and apex itself; give --spot or --onset and --apex", file=sys.stderr)
        return 2
    if not args.spot and (args.onset is None or args.apex is None):
        print(
            "mer predict: give --onset and --apex (frame numbers) to classify the onset -> apex change you name, "
            "or --spot to find the micro-expressions of a long recording first",
            file=sys.stderr,
        )
        return 2
    if not args.spot and (args.csv or args.fps or args.sheet):
        print("mer predict: --csv, --fps and --sheet go with --spot", file=sys.stderr)
        return 2
    from mer.predict import PredictError

    try:
        result = predict(args)
    except PredictError as exc:
        print(f"mer predict: {exc}", file=sys.stderr)
        return 1
    if args.csv:
        write_rows(args.csv, result)
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(format_spotted(result) if args.spot else format_result(result))
    if args.json:
        from mer.io import write_json

        write_json(args.json, result)
    return 0


def predict(args: argparse.Namespace) -> dict[str, Any]:
    """The `predict` command's result as a JSON-ready dict."""
    from mer.face.landmarks import make_detector
    from mer.io import load_params
    from mer.predict import (
        PredictError,
        apex_sheet,
        crop_pair,
        fold_models,
        load_model,
        load_run,
        read_clip,
        spot_intervals,
    )

    if not Path(args.params).is_file():
        raise PredictError(f"{args.params} is missing: run predict in the project folder of a finished run")
    params = load_params(args.params)
    folds = fold_models(args.models)
    paths = {args.model: Path(args.model)} if args.model else folds
    run_ = load_run(params, args.landmarks, args.folds, list(folds))
    clip = read_clip(args.clip)
    marks = params["landmarks"]
    detector = make_detector(marks["backend"], **(marks["options"] or {}))
    models = {name: load_model(path, run_) for name, path in paths.items()}
    about = {
        "clip": str(clip.source),
        "frames": len(clip.numbers),
        "models": {name: str(path) for name, path in paths.items()},
        "combined": "mean over LOSO fold models" if len(paths) > 1 else "one model",
        "classes": run_.classes,
    }
    if not args.spot:
        answer = classify(*crop_pair(clip, args.onset, args.apex, run_, detector), run_, models)
        return {"clip": about["clip"], "onset": args.onset, "apex": args.apex, **about, **answer}
    fps, intervals = spot_intervals(args.clip, params, detector, args.fps)
    rows, crops = [], []
    for interval in intervals:
        crops.append(crop_pair(clip, interval.onset, interval.apex, run_, detector))
        answer = classify(*crops[-1], run_, models)
        del answer["per_model"]
        rows.append({**asdict(interval), "score": round(interval.score, 4), **answer})
    if args.sheet:
        titles = [f"{r['onset']}-{r['apex']}-{r['offset']}: {r['predicted']}" for r in rows]
        apex_sheet(args.sheet, crops, titles)
    return {**about, "fps": fps, "intervals": rows}


def classify(onset_crop: np.ndarray, apex_crop: np.ndarray, run_: Any, models: dict[str, Any]) -> dict[str, Any]:
    """The class probabilities of one onset -> apex change: the models' mean, the predicted class, each model's."""
    from mer.predict import model_inputs, probabilities

    motion, first = model_inputs(onset_crop, apex_crop, run_.kind, run_.size)
    per_model = probabilities(models, motion, first, run_.precision, run_.threads)
    mean = np.mean(list(per_model.values()), axis=0)
    return {
        "probabilities": dict(zip(run_.classes, mean.round(6).tolist(), strict=True)),
        "predicted": run_.classes[int(mean.argmax())],
        "per_model": {name: dict(zip(run_.classes, p.round(6).tolist(), strict=True)) for name, p in per_model.items()},
    }


def format_result(result: dict[str, Any]) -> str:
    """The result as the text the command prints."""
    how = _models_line(result["models"])
    width = max(len(c) for c in result["classes"])
    lines = [
        f"clip {result['clip']}: {result['frames']} frames, onset {result['onset']}, apex {result['apex']} "
        "(given, not spotted)",
        how,
    ]
    lines += [f"  {c:<{width}}  {p:.4f}" for c, p in result["probabilities"].items()]
    lines.append(f"predicted: {result['predicted']}")
    return "\n".join(lines)


def format_spotted(result: dict[str, Any]) -> str:
    """One line per spotted interval: onset, apex, offset, predicted class, the probabilities."""
    lines = [
        f"clip {result['clip']}: {result['frames']} frames at {result['fps']:g} fps, "
        f"{len(result['intervals'])} micro-expression(s) spotted; {_models_line(result['models'])}",
        "  onset   apex offset  " + " ".join(f"{c:>10}" for c in result["classes"]) + "  predicted",
    ]
    for row in result["intervals"]:
        probabilities = " ".join(f"{row['probabilities'][c]:10.4f}" for c in result["classes"])
        lines.append(f"{row['onset']:7d} {row['apex']:6d} {row['offset']:6d}  {probabilities}  {row['predicted']}")
    return "\n".join(lines)


def write_rows(path: str, result: dict[str, Any]) -> None:
    """The spotted intervals as CSV: onset, apex, offset, score, region, predicted, prob_<class>..."""
    import csv

    from mer.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(
            ["onset", "apex", "offset", "score", "region", "predicted", *(f"prob_{c}" for c in result["classes"])]
        )
        for row in result["intervals"]:
            probabilities = [row["probabilities"][c] for c in result["classes"]]
            writer.writerow(
                [
                    row["onset"],
                    row["apex"],
                    row["offset"],
                    row["score"],
                    row["region"],
                    row["predicted"],
                    *probabilities,
                ]
            )


def _models_line(models: dict[str, str]) -> str:
    if len(models) > 1:
        return f"mean of {len(models)} LOSO fold models ({', '.join(models)})"
    return f"model {next(iter(models.values()))}"
