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
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
NUMBER = re.compile(r"(\d+)\D*$")


class PredictError(Exception):
    """A clip, run or model predict cannot use; the message says which and what to do."""


@dataclass(frozen=True)
class Clip:
    """A clip's frame numbers and a reader for one frame (RGB uint8), from a folder or a video."""

    source: Path
    numbers: list[int]
    read: Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Run:
    """What predict needs from a finished run: its preprocessing params, template and the folds' model spec."""

    classes: list[str]
    params: dict[str, Any]  # the run's params.yaml: `landmarks`, `normalise`, `crop`, `ingest.margin_frames`
    template: Any  # mer.face.store.Template
    model: dict[str, Any]  # {"name", "options"} as in curves.json
    kind: str
    size: int
    precision: str
    threads: int | str  # the folds' thread count (curves.json; `auto` for folds that did not record it)


def read_clip(path: str | Path) -> Clip:
    """A folder of numbered frames or a video file; a clear error for anything else."""
    path = Path(path)
    if path.is_dir():
        return _folder_clip(path)
    if path.is_file():
        return _video_clip(path)
    raise PredictError(f"clip {path} does not exist: give a folder of frames or a video file")


def fold_models(models: str | Path) -> dict[str, Path]:
    """Every LOSO fold model of every seed, `seed<n>/<subject>` -> models/seed<n>/<subject>.pt, in order."""
    found = sorted(Path(models).glob("seed*/*.pt"))
    if not found:
        raise PredictError(f"no fold models in {models}/seed*/ (`dvc repro` or `dvc pull` makes them)")
    return {f"{path.parent.name}/{path.stem}": path for path in found}


def load_run(params: dict, landmarks: str | Path, folds: str | Path, names: list[str]) -> Run:
    """The run's settings; the curves.json of the fold models `names` (seed<n>/<subject>) must agree."""
    from mer.face import store
    from mer.io import read_json

    if not Path(landmarks).is_file():
        raise PredictError(f"{landmarks} is missing: predict uses a finished run (`dvc repro` or `dvc pull` first)")
    curves = {}
    for name in names:
        file = Path(folds) / name / "curves.json"
        if not file.is_file():
            raise PredictError(f"{file} is missing: the fold {name} has no record of how it was trained")
        curves[name] = read_json(file)
    first_name, first = next(iter(curves.items()))
    for name, c in curves.items():
        if (c["classes"], c["model"], c["input"]) != (first["classes"], first["model"], first["input"]):
            raise PredictError(
                f"fold {name} was trained with other classes, model or input than fold {first_name} "
                f"({Path(folds) / name / 'curves.json'}); rerun `dvc repro`"
            )
    return Run(
        classes=first["classes"],
        params=params,
        template=store.read(landmarks).template,
        model=first["model"],
        kind=first["input"]["kind"],
        size=int(first["input"]["size"]),
        precision=first["precision"],
        threads=first.get("threads", "auto"),
    )


def crop_pair(clip: Clip, onset: int, apex: int, run: Run, detector: Any) -> tuple[np.ndarray, np.ndarray]:
    """The onset and apex crops (S, S, 3) uint8, made as the landmarks, normalise and crop stages make them."""
    from mer.face.align import normalised_landmarks
    from mer.face.crop import CropSettings, crop_maps, crop_rgb
    from mer.face.detect import check_inside, reference_frame
    from mer.face.landmarks import NoFace
    from mer.face.lwm import LWMTransform
    from mer.failures import ClipError

    for name, number in (("onset", onset), ("apex", apex)):
        if number not in clip.numbers:
            raise PredictError(
                f"{name} frame {number} is not in {clip.source} (frames {clip.numbers[0]}.."
                f"{clip.numbers[-1]}, {len(clip.numbers)} of them)"
            )
    if apex < onset:
        raise PredictError(f"apex frame {apex} comes before onset frame {onset} in {clip.source}")
    p = run.params
    kept = [n for n in clip.numbers if n >= onset - p["ingest"]["margin_frames"]]  # as ingest keeps them
    reference = reference_frame(kept, onset, p["landmarks"]["frame"])
    image = clip.read(reference)
    try:
        found = detector(image)
        check_inside(found.landmarks, image.shape[1], image.shape[0])
    except (NoFace, ClipError) as exc:
        raise PredictError(
            f"{clip.source}: no usable face in frame {reference} ({exc}); predict needs one "
            "frontal face, as the training clips have"
        ) from None
    template = run.template
    try:
        transform = LWMTransform.fit(template.landmarks, found.landmarks, p["normalise"]["neighbours"])
    except ValueError as exc:
        raise PredictError(f"{clip.source}: cannot register frame {reference} to the template ({exc})") from None
    points = normalised_landmarks(transform, found.landmarks, template.landmarks)
    map_x, map_y, _ = crop_maps(transform, points, CropSettings.from_params(p["crop"]))
    return crop_rgb(clip.read(onset), map_x, map_y), crop_rgb(clip.read(apex), map_x, map_y)


def model_inputs(onset: np.ndarray, apex: np.ndarray, kind: str, size: int) -> tuple[Any, Any]:
    """(motion, onset) tensors for one clip, through the same resize and selection as evaluation."""
    import torch

    from mer.training import inputs

    if not inputs.input_kind(kind).from_rgb:
        made = " or ".join(repr(name) for name, spec in inputs.KINDS.items() if spec.from_rgb)
        raise PredictError(
            f"this run's models take input kind {kind!r}; predict computes kind {made} only "
            "(from a new clip's RGB onset and apex)"
        )
    rgb = torch.empty(1, 2, 1, 3, size, size, dtype=torch.uint8)
    for i, crop in enumerate((onset, apex)):
        inputs.resize_uint8(crop[None, None], size, out=rgb[:, i])
    at = torch.zeros(1, dtype=torch.long)
    frames = inputs.FoldFrames(
        rgb=rgb, onset_position=at, apex_position=at, depth_onset=None, depth_apex=None, flow=None
    )
    batch = inputs.select(frames, torch.arange(1))
    return inputs.motion(batch, kind), batch.onset


def load_model(path: str | Path, run: Run) -> Any:
    """The model at `path` built as the run builds it; a clear error if it is of another kind or class list."""
    from mer.training import fold_model

    try:
        return fold_model.load(path, run.model["name"], run.model["options"], run.classes, run.kind, run.size)
    except fold_model.ModelFileError as exc:
        raise PredictError(str(exc)) from None


def probabilities(
    models: dict[str, Any], motion: Any, onset: Any, precision: str, threads: int | str = "auto"
) -> dict[str, np.ndarray]:
    """Each model's class probabilities (C,), evaluated as training evaluates (eval mode, same precision and
    thread count)."""
    from mer.training import loop
    from mer.training.device import choose

    try:
        device = choose(precision, threads)
    except ValueError:
        raise PredictError(
            f"the models were trained in {precision}, which needs a CUDA device, and torch sees none here"
        ) from None
    return {
        name: loop.predict(model.to(device.device), motion, onset, device)[0].numpy() for name, model in models.items()
    }


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


def _folder_clip(folder: Path) -> Clip:
    from mer.failures import ClipError
    from mer.images import read_rgb

    files: dict[int, Path] = {}
    for file in sorted(folder.iterdir()):
        match = NUMBER.search(file.stem)
        if file.suffix.lower() not in FRAME_SUFFIXES or not match:
            continue
        number = int(match.group(1))
        if number in files:
            raise PredictError(f"{folder}: {files[number].name} and {file.name} are both frame {number}")
        files[number] = file
    if not files:
        raise PredictError(f"{folder} has no numbered frame files ({', '.join(FRAME_SUFFIXES)})")

    def read(number: int) -> np.ndarray:
        try:
            return read_rgb(files[number])
        except ClipError as exc:
            raise PredictError(str(exc)) from None

    return Clip(folder, sorted(files), read)


def _video_clip(path: Path) -> Clip:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while capture.isOpened():
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise PredictError(
            f"{path}: OpenCV cannot read it as a video (no frame decoded); give an mp4/avi file or a folder of frames"
        )
    return Clip(path, list(range(len(frames))), lambda number: frames[number])
