"""68-point landmarks (iBUG 300-W order) behind one small interface.

Backends: `dlib` (HOG face detector + the 68-point shape predictor shipped in the
`face_recognition_models` package; fully offline) and `face_alignment` (FAN; it downloads
its weights on first use). Both return a `Detection` for the largest face, or raise `NoFace`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

BACKENDS = ("dlib", "face_alignment")
DLIB_MODEL = "shape_predictor_68_face_landmarks.dat"


class NoFace(Exception):
    """No face was found in the image."""


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray  # (68, 2) float64, x/y in pixels
    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    faces: int  # how many faces the detector found (the largest is kept)


class Detector(Protocol):
    def __call__(self, image: np.ndarray) -> Detection:
        """Landmarks of the largest face in an RGB uint8 image."""


def dlib_model_path() -> Path:
    """The 68-point model inside face_recognition_models, found without importing the package
    (its __init__ imports pkg_resources, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package face_recognition_models is not installed (pip install face_recognition_models)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / DLIB_MODEL
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{DLIB_MODEL} not found inside face_recognition_models at {spec.submodule_search_locations}"
    )


class DlibDetector:
    """dlib's frontal HOG detector + 68-point regression trees; `upsample` helps small faces."""

    def __init__(self, upsample: int = 1, model_path: str | os.PathLike | None = None) -> None:
        import dlib

        self.upsample = upsample
        self._detect = dlib.get_frontal_face_detector()
        self._predict = dlib.shape_predictor(str(model_path or dlib_model_path()))
        self._rectangle = dlib.rectangle

    def __call__(self, image: np.ndarray) -> Detection:
        rects, scores, _ = self._detect.run(_rgb(image), self.upsample, 0.0)
        if not rects:
            raise NoFace("dlib found no face")
        best = max(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]))
        rect = rects[best]
        shape = self._predict(_rgb(image), rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64)
        return Detection(points, box, float(scores[best]), len(rects))


class FanDetector:
    """FAN 2D landmarks with its S3FD face detector (weights fetched by face_alignment)."""

    WEIGHTS = ("2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth")

    def __init__(self, device: str = "cpu") -> None:
        import face_alignment
        import torch

        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        try:
            self._model = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D, device=device, flip_input=False, compile=False
            )
        except Exception as exc:  # download failures surface as URLError/OSError/HTTPError
            missing = [w for w in self.WEIGHTS if not (checkpoints / w).is_file()]
            raise RuntimeError(
                f"face_alignment could not load its weights ({type(exc).__name__}: {exc}). "
                f"It downloads {', '.join(missing) or 'them'} into {checkpoints} on first use; without "
                "internet, copy those files there from a machine that has it, or set landmarks.backend: dlib."
            ) from exc

    def __call__(self, image: np.ndarray) -> Detection:
        points, scores, boxes = self._model.get_landmarks_from_image(
            _rgb(image), return_bboxes=True, return_landmark_score=True
        )
        if not points:
            raise NoFace("face_alignment found no face")
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
        best = int(np.argmax(areas))
        box = np.asarray(boxes[best][:4], dtype=np.float64)
        score = float(boxes[best][4]) if len(boxes[best]) > 4 else float(np.mean(scores[best]))
        return Detection(np.asarray(points[best][:, :2], dtype=np.float64), box, score, len(points))


def make_detector(backend: str, **options) -> Detector:
    if backend == "dlib":
        return DlibDetector(**options)
    if backend == "face_alignment":
        return FanDetector(**options)
    raise ValueError(f"unknown landmark backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)
