"""A new clip through a finished run's own preprocessing and fold models (the `mer predict` command's library,
mer/commands/predict.py): the clip read from a frame folder or a video, its reference frame's landmarks, the LWM
transform onto the run's template, the eye-based crop, the model input exactly as evaluation builds it, and the
class probabilities of each model; with `--spot`, the micro-expression intervals of a long recording first
(mer/spotting/); a clear PredictError for a clip, run or model it cannot use."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from mer.face import landmark_store
from mer.face.align import normalised_landmarks
from mer.face.crop import CropSettings, crop_maps, crop_rgb
from mer.face.detect import check_inside, reference_frame
from mer.face.landmarks import NoFace
from mer.face.lwm import LWMTransform
from mer.failures import ClipError
from mer.images import read_rgb
from mer.io import read_json
from mer.plots import image_grid
from mer.spotting import recording as spotting_recording
from mer.spotting.spotter import Interval, SpotConfig, spot
from mer.training import fold_model, inputs, loop
from mer.training.device import choose

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
    template: Any  # mer.face.landmark_store.Template
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
        template=landmark_store.read(landmarks).template,
        model=first["model"],
        kind=first["input"]["kind"],
        size=int(first["input"]["size"]),
        precision=first["precision"],
        threads=first.get("threads", "auto"),
    )


def crop_pair(clip: Clip, onset: int, apex: int, run: Run, detector: Any) -> tuple[np.ndarray, np.ndarray]:
    """The onset and apex crops (S, S, 3) uint8, made as the landmarks, normalise and crop stages make them."""
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


def spot_intervals(path: str | Path, params: dict, detector: Any, fps: float | None) -> tuple[float, list[Interval]]:
    """(frame rate, the spotted intervals in frame order) of a long recording, with the run's `spot` knobs (the
    defaults of mer/spotting/spotter.py for a run whose params predate them)."""
    config = SpotConfig.from_params(params["spot"]) if "spot" in params else SpotConfig()
    try:
        recording = spotting_recording.load(path, detector, fps)
        found = spot(recording, config)
    except (ValueError, NoFace, FileNotFoundError) as exc:
        raise PredictError(f"cannot spot in {path}: {exc}") from None
    return recording.fps, sorted(found.intervals, key=lambda interval: interval.onset)


def apex_sheet(path: str | Path, crops: list[tuple[np.ndarray, np.ndarray]], titles: list[str]) -> None:
    """A sheet of the spotted intervals: per row the onset and apex crops the models saw and |apex - onset|
    (stretched to the row's largest difference, so a movement of a few grey levels shows)."""
    panels = []
    for onset, apex in crops:
        diff = np.abs(apex.astype(np.float32) - onset.astype(np.float32)).mean(2)
        panels.append([onset, apex, (255 * diff / max(float(diff.max()), 1.0)).astype(np.uint8)])
    image_grid(path, panels, titles, ["onset", "apex", "|apex - onset|, stretched"])


def model_inputs(onset: np.ndarray, apex: np.ndarray, kind: str, size: int) -> tuple[Any, Any]:
    """(motion, onset) tensors for one clip, through the same resize and selection as evaluation."""

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
    try:
        return fold_model.load(path, run.model["name"], run.model["options"], run.classes, run.kind, run.size)
    except fold_model.ModelFileError as exc:
        raise PredictError(str(exc)) from None


def probabilities(
    models: dict[str, Any], motion: Any, onset: Any, precision: str, threads: int | str = "auto"
) -> dict[str, np.ndarray]:
    """Each model's class probabilities (C,), evaluated as training evaluates (eval mode, same precision and
    thread count)."""
    try:
        device = choose(precision, threads)
    except ValueError:
        raise PredictError(
            f"the models were trained in {precision}, which needs a CUDA device, and torch sees none here"
        ) from None
    return {
        name: loop.predict(model.to(device.device), motion, onset, device)[0].numpy() for name, model in models.items()
    }


def _folder_clip(folder: Path) -> Clip:
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
