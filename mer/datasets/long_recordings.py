"""Synthetic long recordings for micro-expression spotting, with known truth.

Each recording is one synthetic subject (the embedded set's photos and identity change,
mer/datasets/synthetic.py) filmed for `seconds` at `fps`: neutral stretches, a few
micro-expressions (the embedded set's AU movements, 0.04-0.5 s by default), eye blinks (the
upper lids close and reopen; a blink is not a micro-expression), a slow head drift and a
small per-frame shake, sensor noise and JPEG. Events and blinks never overlap.

Layout, after CAS(ME)^3 part C (whose ME table, sheet `mockCrimeME`, has the columns
sub, count, onset, offset, au, emotion and no apex): `labels.csv` has those columns plus
`apex`, which the synthetic truth knows; frames are `recordings/<sub>/<n>.jpg` numbered from 1
(the frame numbers the table uses), and `videos/<sub>.avi` (MJPG) when `video` is on, whose frames
count from 0 as `mer predict` counts a video's (file n.jpg is video frame n - 1).
`synthetic_long.json` keeps the rest: fps, frame count, identity and the blinks of each recording.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from mer.datasets.synthetic import (
    MOVEMENTS,
    SyntheticConfig,
    displacement_field,
    face_photos,
    intensity,
    make_subject,
)
from mer.face.landmarks import Detector, NoFace

LABEL_COLUMNS = ["sub", "count", "onset", "apex", "offset", "au", "emotion"]
UPPER_LIDS = ((37, 38), (43, 44))  # dlib points of each upper eyelid
LOWER_LIDS = ((41, 40), (47, 46))  # and of the lower lid below them


@dataclass(frozen=True)
class LongConfig:
    recordings: int = 3
    fps: float = 30.0
    seconds: float = 20.0
    events: int = 4  # micro-expressions per recording
    event_seconds: tuple[float, float] = (0.04, 0.5)  # onset to offset
    blinks: int = 3  # per recording
    blink_seconds: tuple[float, float] = (0.1, 0.3)
    classes: tuple[str, ...] = ("happiness", "disgust", "surprise", "repression")
    frame_size: tuple[int, int] = (320, 240)  # width, height
    face_width: float = 130.0
    amplitude: tuple[float, float] = (2.0, 3.5)  # px of the largest anchor at the apex
    drift: float = 6.0  # px, amplitude of the slow head drift (a few sinusoids of 4-20 s periods)
    shake: float = 0.1  # px, sd of the independent per-frame head shake
    noise: float = 1.5  # grey levels
    jpeg_quality: int = 92
    video: bool = True
    seed: int = 0

    @classmethod
    def from_params(cls, p: dict) -> LongConfig:
        """From the `synthesize_long` block of params.yaml."""
        return cls(
            recordings=p["recordings"],
            fps=float(p["fps"]),
            seconds=float(p["seconds"]),
            events=p["events"],
            event_seconds=tuple(p["event_seconds"]),
            blinks=p["blinks"],
            blink_seconds=tuple(p["blink_seconds"]),
            classes=tuple(p["classes"]),
            frame_size=tuple(p["frame_size"]),
            face_width=p["face_width"],
            amplitude=tuple(p["amplitude_px"]),
            drift=p["drift_px"],
            shake=p["shake_px"],
            noise=p["noise"],
            jpeg_quality=p["jpeg_quality"],
            video=p["video"],
            seed=p["seed"],
        )

    def frames(self, seconds: float) -> int:
        return round(seconds * self.fps)


@dataclass(frozen=True)
class Event:
    onset: int  # frame numbers from 1, as in the table
    apex: int
    offset: int
    label: str  # an emotion, or "blink"


def generate(out_dir: str | Path, config: LongConfig, detector: Detector) -> dict:
    """Write the recordings, labels.csv and (optionally) the videos under `out_dir`; return the metadata."""
    _check(config)
    out_dir = Path(out_dir)
    photos = face_photos()
    face_config = SyntheticConfig(frame_size=config.frame_size, face_width=config.face_width)
    rows: list[list[Any]] = []
    meta: dict[str, Any] = {"fps": config.fps, "recordings": {}}
    for sub, seed in enumerate(np.random.SeedSequence(config.seed).spawn(config.recordings), start=1):
        rng = np.random.default_rng(seed)
        name, photo = photos[(sub - 1) % len(photos)]
        face, identity = make_subject(photo, detector, face_config, rng)
        try:
            landmarks = detector(face).landmarks
        except NoFace:
            raise RuntimeError(
                f"synthetic long recording {sub} ({name}, {identity}): the landmark detector finds no face; "
                "change synthesize_long.seed"
            ) from None
        events, blinks = _schedule(config, rng)
        for count, event in enumerate(events, start=1):
            rows.append([sub, count, event.onset, event.apex, event.offset, MOVEMENTS[event.label][0], event.label])
        length = config.frames(config.seconds)
        _write_recording(out_dir, sub, face, landmarks, events, blinks, length, config, rng)
        meta["recordings"][str(sub)] = {
            "photo": name,
            **identity,
            "frames": length,
            "events": [vars(e) for e in events],
            "blinks": [vars(b) for b in blinks],
        }
    _write_labels(out_dir / "labels.csv", rows)
    return meta


def read_labels(path: str | Path) -> dict[str, list[Event]]:
    """labels.csv -> recording (the `sub` column, as text) -> its events, in table order."""
    events: dict[str, list[Event]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(LABEL_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {LABEL_COLUMNS}")
        for line, row in enumerate(reader, start=2):
            try:
                onset, apex, offset = (int(row[k]) for k in ("onset", "apex", "offset"))
            except ValueError:
                raise ValueError(f"{path} line {line}: onset, apex and offset must be integers, got {row}") from None
            if not onset <= apex <= offset:
                raise ValueError(f"{path} line {line}: needs onset <= apex <= offset, got {onset}, {apex}, {offset}")
            events.setdefault(row["sub"], []).append(Event(onset, apex, offset, row["emotion"]))
    return events


def _check(config: LongConfig) -> None:
    unknown = sorted(set(config.classes) - set(MOVEMENTS))
    if unknown:
        raise ValueError(f"synthesize_long.classes: no movement defined for {unknown}; known: {sorted(MOVEMENTS)}")
    longest = config.frames(max(config.event_seconds[1], config.blink_seconds[1]))
    slots = config.events + config.blinks
    if slots and config.frames(config.seconds) // slots < 2 * longest + 4:
        raise ValueError(
            f"synthesize_long: {slots} events and blinks of up to {longest} frames do not fit apart in "
            f"{config.seconds} s at {config.fps} fps; lengthen seconds or have fewer events"
        )


def _schedule(config: LongConfig, rng: np.random.Generator) -> tuple[list[Event], list[Event]]:
    """Events and blinks in random order, one per equal slot of the recording, each at a random place in its
    slot with at least a longest event's length of neutral frames on both sides."""
    kinds = rng.permutation(["event"] * config.events + ["blink"] * config.blinks)
    slot = config.frames(config.seconds) // max(1, len(kinds))
    margin = config.frames(max(config.event_seconds[1], config.blink_seconds[1])) // 2 + 2
    events, blinks = [], []
    for i, kind in enumerate(kinds):
        bounds = config.event_seconds if kind == "event" else config.blink_seconds
        length = max(2, config.frames(float(rng.uniform(*bounds))))  # onset to offset, frames
        onset = 1 + i * slot + int(rng.integers(margin, slot - margin - length + 1))
        if kind == "event":
            apex = onset + min(length - 1, max(1, round(length * rng.uniform(0.3, 0.6))))
            events.append(Event(onset, apex, onset + length, str(rng.choice(config.classes))))
        else:
            blinks.append(Event(onset, onset + length // 2, onset + length, "blink"))
    return events, blinks


def _write_recording(
    out_dir: Path,
    sub: int,
    face: np.ndarray,
    landmarks: np.ndarray,
    events: list[Event],
    blinks: list[Event],
    length: int,
    config: LongConfig,
    rng: np.random.Generator,
) -> None:
    fields = [
        displacement_field(face.shape[:2], landmarks, MOVEMENTS[e.label][1], float(rng.uniform(*config.amplitude)))
        for e in events
    ]
    lid = _eyelid_field(face.shape[:2], landmarks)
    head = _head_motion(length, config, rng)
    grid_x, grid_y = np.meshgrid(np.arange(face.shape[1], dtype=np.float32), np.arange(face.shape[0], dtype=np.float32))
    folder = out_dir / "recordings" / str(sub)
    folder.mkdir(parents=True, exist_ok=True)
    video = None
    if config.video:
        (out_dir / "videos").mkdir(exist_ok=True)
        video = cv2.VideoWriter(
            str(out_dir / "videos" / f"{sub}.avi"), cv2.VideoWriter.fourcc(*"MJPG"), config.fps, config.frame_size
        )
    for t in tqdm(range(1, length + 1), desc=f"recording {sub}", unit="frame", leave=False):
        field = np.zeros((*face.shape[:2], 2), np.float32)
        for event, event_field in zip(events, fields, strict=True):
            if event.onset < t < event.offset:
                field += intensity(t, event.onset, event.apex, event.offset) * event_field
        for blink in blinks:
            if blink.onset < t < blink.offset:
                field += intensity(t, blink.onset, blink.apex, blink.offset) * lid
        map_x = grid_x - field[..., 0] - np.float32(head[t - 1, 0])
        map_y = grid_y - field[..., 1] - np.float32(head[t - 1, 1])
        frame = cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        frame = np.clip(frame + rng.normal(0, config.noise, frame.shape), 0, 255).astype(np.uint8)
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
        (folder / f"{t}.jpg").write_bytes(data.tobytes())
        if video is not None:
            video.write(bgr)
    if video is not None:
        video.release()


def _eyelid_field(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """(H, W, 2) field that at intensity 1 moves each upper lid down onto the lower lid: a narrow
    bump around the lid (sd a tenth of the eye distance), so the brows above barely move."""
    eye_distance = np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    field = np.zeros((*shape, 2), np.float32)
    for upper, lower in zip(UPPER_LIDS, LOWER_LIDS, strict=True):
        cx, cy = landmarks[list(upper)].mean(0)
        gap = landmarks[list(lower)].mean(0)[1] - cy
        sx, sy = 0.18 * eye_distance, 0.1 * eye_distance
        bump = np.exp(-((xs - cx) ** 2) / (2 * sx**2) - (ys - cy) ** 2 / (2 * sy**2))
        field[..., 1] += bump * np.float32(gap)
    return field


def _head_motion(length: int, config: LongConfig, rng: np.random.Generator) -> np.ndarray:
    """(length, 2) px: a slow drift (three sinusoids per axis, periods 4-20 s, summing to at most `drift`)
    plus an independent shake per frame."""
    t = np.arange(length) / config.fps
    motion = np.zeros((length, 2))
    for axis in range(2):
        periods = rng.uniform(4, 20, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = rng.dirichlet(np.ones(3)) * config.drift
        motion[:, axis] = np.sin(2 * np.pi * t[:, None] / periods + phases) @ weights
    motion -= motion[0]
    return motion + rng.normal(0, config.shake, (length, 2))


def _write_labels(path: Path, rows: list[list[Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    writer.writerows(rows)
    path.write_text(text.getvalue())
