"""Class probabilities of a run's trained models for one new clip: `mer predict CLIP --onset N --apex M`.

CLIP is a folder of frames, numbered by the last number in each file name (img46.jpg is frame 46), or a
video file OpenCV can read (mp4, avi, ...), whose frames are numbered from 0. The clip takes the
pipeline's own code with the run's params.yaml: landmarks of the reference frame (`landmarks.frame`:
the first frame ingest would keep, i.e. the first at or after onset - ingest.margin_frames, or the
onset), an LWM transform onto the run's template (data/landmarks.h5), the eye-based crop, and the model
input exactly as evaluation builds it. A frame folder of a clip the run saw gives its input bit for bit.

Onset and apex are yours: predict does not spot micro-expressions. The probabilities are the mean over
every LOSO fold model of every seed (models/seed<n>/<subject>.pt) unless `--model FILE` names one (a
fold's, or models/all.pt of the optional final@all stage). Only input kind `difference` (apex - onset)
is computed here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="a folder of numbered frames (img46.jpg ...) or a video file (frames from 0)")
    parser.add_argument("--onset", type=int, help="onset frame number (required: predict does not spot)")
    parser.add_argument("--apex", type=int, help="apex frame number (required: predict does not spot)")
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
    if args.onset is None or args.apex is None:
        print(
            "mer predict: give --onset and --apex (frame numbers); predict does not spot micro-expressions, "
            "it classifies the onset -> apex change you name",
            file=sys.stderr,
        )
        return 2
    from mer.predict import PredictError

    try:
        result = predict(args)
    except PredictError as exc:
        print(f"mer predict: {exc}", file=sys.stderr)
        return 1
    if args.json == "-":
        print(json.dumps(result, indent=2))
        return 0
    print(format_result(result))
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
        crop_pair,
        fold_models,
        load_model,
        load_run,
        model_inputs,
        probabilities,
        read_clip,
    )

    if not Path(args.params).is_file():
        raise PredictError(f"{args.params} is missing: run predict in the project folder of a finished run")
    params = load_params(args.params)
    folds = fold_models(args.models)
    paths = {args.model: Path(args.model)} if args.model else folds
    run_ = load_run(params, args.landmarks, args.folds, list(folds))
    clip = read_clip(args.clip)
    marks = params["landmarks"]
    onset_crop, apex_crop = crop_pair(
        clip, args.onset, args.apex, run_, make_detector(marks["backend"], **(marks["options"] or {}))
    )
    motion, onset = model_inputs(onset_crop, apex_crop, run_.kind, run_.size)
    per_model = probabilities(
        {name: load_model(path, run_) for name, path in paths.items()}, motion, onset, run_.precision, run_.threads
    )
    mean = np.mean(list(per_model.values()), axis=0)
    return {
        "clip": str(clip.source),
        "onset": args.onset,
        "apex": args.apex,
        "frames": len(clip.numbers),
        "models": {name: str(path) for name, path in paths.items()},
        "combined": "mean over LOSO fold models" if len(paths) > 1 else "one model",
        "classes": run_.classes,
        "probabilities": dict(zip(run_.classes, mean.round(6).tolist(), strict=True)),
        "predicted": run_.classes[int(mean.argmax())],
        "per_model": {name: dict(zip(run_.classes, p.round(6).tolist(), strict=True)) for name, p in per_model.items()},
    }


def format_result(result: dict[str, Any]) -> str:
    """The result as the text the command prints."""
    models = result["models"]
    how = (
        f"mean of {len(models)} LOSO fold models ({', '.join(models)})"
        if len(models) > 1
        else f"model {next(iter(models.values()))}"
    )
    width = max(len(c) for c in result["classes"])
    lines = [
        f"clip {result['clip']}: {result['frames']} frames, onset {result['onset']}, apex {result['apex']} "
        "(given, not spotted)",
        how,
    ]
    lines += [f"  {c:<{width}}  {p:.4f}" for c, p in result["probabilities"].items()]
    lines.append(f"predicted: {result['predicted']}")
    return "\n".join(lines)
