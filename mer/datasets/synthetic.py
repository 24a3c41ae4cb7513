"""The embedded default data set: synthetic micro-expressions written in the CASME II layout.

Faces are real photographs shipped inside installed packages (scikit-image's `astronaut`,
matplotlib's `grace_hopper.jpg`); nothing is committed. Each subject is one photo under an
identity change (scale, aspect, in-plane rotation, mirror, colour gain, gamma, lighting
ramp). Each clip is a neutral start, then a local movement that rises to an apex and
decays, plus head jitter and sensor noise, encoded as JPEG. The movement is a smooth
displacement field anchored on the subject's dlib landmarks, a few pixels at the apex; each
class is an anatomically plausible action (AU) pattern, so motion, not identity, carries
the label.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from mer.face.landmarks import Detector, NoFace

# Per class: (landmark index, direction (dx, dy) in face units; y grows downwards), and AUs.
MOVEMENTS: dict[str, tuple[str, list[tuple[int, tuple[float, float]]]]] = {
    # AU12 lip-corner puller: mouth corners out and up
    "happiness": ("12", [(48, (-0.6, -0.8)), (54, (0.6, -0.8)), (49, (-0.2, -0.4)), (53, (0.2, -0.4))]),
    # AU4 brow lowerer + AU9 nose wrinkler: inner brows down and together, nose wings up
    "disgust": (
        "4+9",
        [
            (20, (0.3, 0.6)),
            (21, (0.6, 0.9)),
            (22, (-0.6, 0.9)),
            (23, (-0.3, 0.6)),
            (31, (0.0, -0.5)),
            (35, (0.0, -0.5)),
        ],
    ),
    # AU1+2 inner and outer brow raiser, upper lids follow a little
    "surprise": (
        "1+2",
        [
            (17, (0.0, -0.7)),
            (19, (0.0, -1.0)),
            (21, (0.0, -0.9)),
            (22, (0.0, -0.9)),
            (24, (0.0, -1.0)),
            (26, (0.0, -0.7)),
            (37, (0.0, -0.3)),
            (44, (0.0, -0.3)),
        ],
    ),
    # AU14 dimpler + AU17 chin raiser: lip corners tighten inwards, lower lip pushed up
    "repression": ("14+17", [(48, (0.6, 0.1)), (54, (-0.6, 0.1)), (57, (0.0, -0.7)), (8, (0.0, -0.4))]),
}
FIXED_TIME = datetime(2014, 5, 8)  # CASME II's coding-sheet date; any constant keeps the file reproducible
HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
]


@dataclass(frozen=True)
class SyntheticConfig:
    subjects: int = 6
    classes: tuple[str, ...] = ("happiness", "disgust", "surprise", "repression")
    clips_per_class: int = 2
    frame_size: tuple[int, int] = (320, 240)  # width, height
    face_width: float = 130.0  # px, before per-subject scale
    frames: tuple[int, int] = (24, 34)  # clip length range
    amplitude: tuple[float, float] = (2.0, 3.5)  # px of the largest anchor at the apex
    jitter: float = 0.3  # px, head motion sd
    noise: float = 1.5  # grey levels, sensor noise sd
    jpeg_quality: int = 92
    seed: int = 0

    @classmethod
    def from_params(cls, p: dict) -> SyntheticConfig:
        """From the `synthesize` block of params.yaml."""
        return cls(
            subjects=p["subjects"],
            classes=tuple(p["classes"]),
            clips_per_class=p["clips_per_class"],
            frame_size=tuple(p["frame_size"]),
            face_width=p["face_width"],
            frames=tuple(p["frames"]),
            amplitude=tuple(p["amplitude_px"]),
            jitter=p["jitter_px"],
            noise=p["noise"],
            jpeg_quality=p["jpeg_quality"],
            seed=p["seed"],
        )


def face_photos() -> list[tuple[str, np.ndarray]]:
    """Real face photos shipped inside installed packages, as RGB uint8."""
    import matplotlib.cbook
    import skimage.data

    hopper = cv2.imread(
        str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.IMREAD_COLOR_RGB
    )
    return [("skimage.data.astronaut", skimage.data.astronaut()), ("matplotlib grace_hopper.jpg", hopper)]


def generate(out_dir: str | Path, config: SyntheticConfig, detector: Detector) -> dict:
    """Write the data set under `out_dir` (CASME2_RAW_selected/ + coding xlsx); return its metadata."""
    if config.frames[0] < 12 or config.frames[1] < config.frames[0]:
        raise ValueError(f"synthesize.frames must be a range [min, max] with min >= 12, got {list(config.frames)}")
    unknown = sorted(set(config.classes) - set(MOVEMENTS))
    if unknown:
        raise ValueError(f"synthesize.classes: no movement defined for {unknown}; known: {sorted(MOVEMENTS)}")
    out_dir = Path(out_dir)
    photos = face_photos()
    seeds = np.random.SeedSequence(config.seed).spawn(config.subjects)
    rows: list[list] = []
    meta: dict[str, Any] = {"photos": [name for name, _ in photos], "subjects": {}, "clips": {}}
    progress = tqdm(
        total=config.subjects * len(config.classes) * config.clips_per_class, desc="synthesize", unit="clip"
    )
    for s, seed in enumerate(seeds, start=1):
        rng = np.random.default_rng(seed)
        name, photo = photos[(s - 1) % len(photos)]
        face, identity = make_subject(photo, detector, config, rng)
        try:
            landmarks = detector(face).landmarks
        except NoFace:
            raise RuntimeError(
                f"synthetic subject {s} ({name}, {identity}): the landmark detector "
                "finds no face; change synthesize.seed"
            ) from None
        meta["subjects"][f"sub{s:02d}"] = {"photo": name, **identity}
        labels = [c for c in config.classes for _ in range(config.clips_per_class)]
        for k, label in enumerate(rng.permutation(labels), start=1):
            clip = f"EP{rng.integers(1, 20):02d}_{k:02d}{'abcdef'[rng.integers(6)]}"
            info = _write_clip(
                out_dir / "CASME2_RAW_selected" / f"sub{s:02d}" / clip, face, landmarks, str(label), config, rng
            )
            rows.append(
                [s, clip, None, info["onset"], info["apex"], info["offset"], None, MOVEMENTS[str(label)][0], str(label)]
            )
            meta["clips"][f"sub{s:02d}/{clip}"] = info
            progress.update()
    progress.close()
    _write_coding(out_dir / "CASME2-coding-synthetic.xlsx", rows)
    return meta


def make_subject(
    photo: np.ndarray, detector: Detector, config: SyntheticConfig, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """A new identity: the photo's face placed in the frame under a random geometry and colour change."""
    box = detector(photo).box
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    identity = {
        "scale": float(rng.uniform(0.9, 1.1)),
        "aspect": float(rng.uniform(0.92, 1.08)),
        "rotation": float(rng.uniform(-5, 5)),
        "mirror": bool(rng.integers(2)),
        "gain": rng.uniform(0.85, 1.15, 3).round(3).tolist(),
        "gamma": float(rng.uniform(0.8, 1.25)),
        "ramp": float(rng.uniform(-0.15, 0.15)),
    }
    width, height = config.frame_size
    zoom = config.face_width * identity["scale"] / (box[2] - box[0])
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), identity["rotation"], zoom)
    m[0, :2] *= identity["aspect"]
    target = np.array([width / 2, height * 0.48])
    m[:, 2] = target - m[:, :2] @ centre
    face = cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101)
    if identity["mirror"]:
        face = face[:, ::-1]
    light = 1 + identity["ramp"] * np.linspace(-1, 1, width)[None, :, None]
    face = 255 * ((face / 255.0) ** identity["gamma"]) * np.array(identity["gain"]) * light
    return np.clip(face, 0, 255).astype(np.uint8), identity


def _write_clip(
    folder: Path, face: np.ndarray, landmarks: np.ndarray, label: str, config: SyntheticConfig, rng: np.random.Generator
) -> dict:
    length = int(rng.integers(config.frames[0], config.frames[1] + 1))
    onset = int(rng.integers(2, 5))
    apex = onset + max(3, round((length - 1 - onset) * rng.uniform(0.3, 0.5)))
    offset = apex + max(2, round((length - 1 - apex) * rng.uniform(0.6, 1.0)))
    start = int(rng.integers(1, 200))
    amplitude = float(rng.uniform(*config.amplitude))
    field = displacement_field(face.shape[:2], landmarks, MOVEMENTS[label][1], amplitude)
    jitter = np.cumsum(rng.normal(0, config.jitter / 2, (length, 2)), axis=0)
    jitter -= jitter[0]
    grid_x, grid_y = np.meshgrid(np.arange(face.shape[1], dtype=np.float32), np.arange(face.shape[0], dtype=np.float32))
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(length):
        a = intensity(t, onset, apex, offset)
        map_x = grid_x - a * field[..., 0] - np.float32(jitter[t, 0])
        map_y = grid_y - a * field[..., 1] - np.float32(jitter[t, 1])
        frame = cv2.remap(face, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        frame = np.clip(frame + rng.normal(0, config.noise, frame.shape), 0, 255).astype(np.uint8)
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality]
        )
        (folder / f"img{start + t}.jpg").write_bytes(data.tobytes())
    return {
        "label": label,
        "onset": start + onset,
        "apex": start + apex,
        "offset": start + offset,
        "first_frame": start,
        "last_frame": start + length - 1,
        "amplitude_px": round(amplitude, 3),
    }


def displacement_field(
    shape: tuple[int, int], landmarks: np.ndarray, anchors: list[tuple[int, tuple[float, float]]], amplitude: float
) -> np.ndarray:
    """Smooth (H, W, 2) field: Gaussian bumps at the anchor landmarks, peak `amplitude` px."""
    eye_distance = np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))
    sigma = 0.25 * eye_distance
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    field = np.zeros((*shape, 2), np.float32)
    for index, direction in anchors:
        cx, cy = landmarks[index]
        bump = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
        field += bump[..., None] * np.asarray(direction, np.float32)
    return field * (amplitude / np.abs(field).max())


def intensity(t: int, onset: int, apex: int, offset: int) -> float:
    """0 before onset, smooth rise to 1 at the apex, smooth decay to 0 at the offset."""
    if t <= onset or t >= offset:
        return 0.0
    if t <= apex:
        u = (t - onset) / (apex - onset)
    else:
        u = (offset - t) / (offset - apex)
    return float(u * u * (3 - 2 * u))


def _write_coding(path: Path, rows: list[list]) -> None:
    """The coding sheet with CASME II's exact header, blank header cells included.

    Saved with fixed timestamps (document properties and zip entries) so that the same seed
    gives the same bytes, which DVC needs to see an unchanged data set.
    """
    from openpyxl import Workbook

    book = Workbook()
    book.properties.created = book.properties.modified = FIXED_TIME
    sheet = book.worksheets[0]
    sheet.title = "Sheet1"
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "docProps/core.xml":  # openpyxl stamps `modified` with the save time
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            stamped = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            target.writestr(stamped, data, compress_type=zipfile.ZIP_DEFLATED)
