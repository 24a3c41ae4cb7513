"""A recording to spot in: a folder of numbered frames or a video file, cut to the face found on its first frame.

The face box (and the landmarks the regions are built on) comes from the first frame only: the head may drift
inside the box (the motion measure removes the face's common motion, motion.py), but a head that leaves it or
turns far is beyond this method.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mer.face.landmarks import Detector, NoFace
from mer.spotting.regions import face_box

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last number in a file name


@dataclass(frozen=True)
class Recording:
    name: str
    fps: float
    numbers: np.ndarray  # (N,) the frame numbers: file names' numbers, or 0..N-1 for a video (as `mer predict`)
    faces: np.ndarray  # (N, h, w) uint8 grey, every frame cut to the first frame's face box
    landmarks: np.ndarray  # (68, 2) of the first frame, in the face box's coordinates


def load(path: str | Path, detector: Detector, fps: float | None = None) -> Recording:
    """A frame folder (frames ordered by the last number in their names; `fps` required) or a video file (its
    own frame rate unless `fps` is given)."""
    path = Path(path)
    numbers: np.ndarray | None = None
    if path.is_dir():
        if fps is None:
            raise ValueError(f"{path}: a frame folder has no frame rate; give it (fps)")
        numbers, frames = _folder_frames(path)
    elif path.is_file():
        frames, video_fps = _video_frames(path)
        fps = fps or video_fps
        if not fps:
            raise ValueError(f"{path}: the video states no frame rate; give it (fps)")
    else:
        raise FileNotFoundError(f"{path}: no such frame folder or video file")
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: no frames")
    try:
        landmarks = detector(cv2.cvtColor(first, cv2.COLOR_BGR2RGB)).landmarks
    except NoFace as e:
        raise NoFace(f"{path}: no face on the first frame ({e})") from None
    x0, y0, x1, y1 = face_box(landmarks, first.shape[:2])
    faces = [cv2.cvtColor(first[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)]
    for frame in frames:
        if frame.shape != first.shape:
            raise ValueError(f"{path}: frame {len(faces) + 1} is {frame.shape}, the first is {first.shape}")
        faces.append(cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY))
    numbers = np.arange(len(faces)) if numbers is None else numbers
    return Recording(
        path.stem if path.is_file() else path.name, float(fps), numbers, np.stack(faces), landmarks - (x0, y0)
    )


def _folder_frames(folder: Path) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    numbered = []
    for p in folder.iterdir():
        if p.suffix.lower() in FRAME_SUFFIXES:
            match = NUMBER.search(p.stem)
            if match is None:
                raise ValueError(f"{p}: a frame file without a number in its name")
            numbered.append((int(match.group(1)), p))
    if not numbered:
        raise ValueError(f"{folder}: no frames ({', '.join(FRAME_SUFFIXES)})")
    numbered.sort()

    def frames() -> Iterator[np.ndarray]:
        for _, p in numbered:
            frame = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if frame is None:
                raise ValueError(f"{p}: not a readable image")
            yield frame

    return np.array([n for n, _ in numbered]), frames()


def _video_frames(path: Path) -> tuple[Iterator[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open this video")
    fps = float(capture.get(cv2.CAP_PROP_FPS))

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()

    return frames(), fps
