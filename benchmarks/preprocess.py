"""Preprocessing benchmark: where the time of landmarks -> normalise -> crop -> cache goes.

Why: preprocessing should cost little more than decoding the JPEG frames it reads (goal: the
whole per-frame cost <= 2x a plain ``cv2.imread``), grow linearly with the number of clips and
keep memory flat. This script measures all three on one machine and PRINTS the figures; it
asserts nothing about time.

1. Breakdown: the library calls the stages make, timed step by step, single process, on the
   clips of ``data/manifest.csv``. The unit is an *output frame* (a frame of a clip's onset or
   apex window: the frames crop decodes, resamples and writes); per-clip work (landmarks, LWM
   fit, sampling map) is amortised over the clip's output frames.
2. Scaling: synthetic sets of 1x, 2x and 4x the default subjects are generated in a temporary
   directory, ingested, and preprocessed end to end (the stage code paths: ``detect_clip``,
   ``LWMTransform.fit``, ``crop_clip``, ``CacheWriter``) in a fresh process per scale that
   reports its peak RSS.
3. Parallel: the crop step through ``mer.parallel.map_clips`` with 1 and 2 workers.

Run from the repository root (manifest paths are relative to it):
``python benchmarks/preprocess.py [--quick]``. Progress bars go to stderr.
"""
from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import platform
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mer.cache import CacheWriter, ClipWindows
from mer.datasets import manifest
from mer.datasets.ingest import ingest
from mer.datasets.protocols import Protocol
from mer.datasets.synthetic import SyntheticConfig, generate
from mer.face.align import crop_affine, normalised_landmarks
from mer.face.crop import CropSettings, Cropped, crop_clip, crop_tasks, frame_file, read_windows, window
from mer.face.detect import ClipLandmarks, detect_clip, init_worker
from mer.face.landmarks import DlibDetector
from mer.face.lwm import LWMTransform, sampling_maps
from mer.face.store import Normalised, Template
from mer.face.template import choose_template, mean_template
from mer.images import encode_png, read_rgb
from mer.io import load_params
from mer.parallel import map_clips

GOAL = 2.0  # whole preprocessing per output frame, in decode floors
SCALES = (1, 2, 4)
QUICK_CLIPS = 12  # breakdown and parallel clips with --quick
FLOOR = "decode window frame (imread)"


# ---------------------------------------------------------------- settings and timing


@dataclass(frozen=True)
class Settings:
    """The params.yaml knobs the preprocessing stages read."""

    params: dict

    @property
    def crop(self) -> dict:
        return self.params["crop"]

    @property
    def detector_options(self) -> dict:
        return self.params["landmarks"]["options"] or {}

    @property
    def neighbours(self) -> int:
        return self.params["normalise"]["neighbours"]

    def template(self, shapes: np.ndarray) -> np.ndarray:
        p = self.params["landmarks"]
        if p["template"] != "mean":
            raise SystemExit(f"benchmark: landmarks.template must be 'mean', got {p['template']!r}")
        return mean_template(shapes, p["canvas"], p["eye_distance"])

    def cache_writer(self, path: Path, clips: int) -> CacheWriter:
        classes = list(Protocol.from_params(self.params["dataset"]["protocol"], self.params["protocols"]).classes)
        return CacheWriter.from_params(path, clips, classes, False, self.params)


@dataclass
class Stopwatch:
    """Seconds accumulated per named step, in first-use order."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def time(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] += time.perf_counter() - start


def imread(path: str) -> np.ndarray:
    """The decode floor: exactly the OpenCV call `mer.images.read_rgb` makes."""
    return cv2.imread(path, cv2.IMREAD_COLOR_RGB)


def needed_frames(row, k: int) -> list[int]:
    """Frame numbers crop writes for a clip: the union of its onset and apex windows."""
    return sorted(set(window(row.frame_numbers, row.onset, k) + window(row.frame_numbers, row.apex, k)))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across fork + exec, so a
    spawned child would report the parent's peak."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


# ---------------------------------------------------------------- 1. step-by-step breakdown


@dataclass(frozen=True)
class Breakdown:
    seconds: dict[str, float]
    clips: int
    output_frames: int
    clip_frames: int  # all manifest frames of the clips (landmarks amortised over a whole clip)
    detector_load: float


def breakdown(clips: pd.DataFrame, s: Settings, out_dir: Path) -> Breakdown:
    """Time each library call of landmarks/normalise/crop/cache separately, on the same files."""
    watch = Stopwatch()
    start = time.perf_counter()
    detector = DlibDetector(**s.detector_options)
    detector_load = time.perf_counter() - start
    rows = list(clips.itertuples())
    shapes, first_frames = [], {}
    for row in rows:  # stage landmarks
        with watch.time("decode first frame (landmarks)"):
            first_frames[row.sample_id] = first = imread(row.frames[0])
        with watch.time("landmarks (dlib, per clip)"):
            shapes.append(detector(first).landmarks)
    with watch.time("mean template (once)"):
        template = s.template(np.stack(shapes))
    size, canvas = s.crop["size"], s.params["landmarks"]["canvas"]
    writer = s.cache_writer(out_dir / "cache.h5", len(rows))
    output_frames = 0
    for row, points in zip(rows, shapes):
        with watch.time("LWM fit"):  # stage normalise
            transform = LWMTransform.fit(template, points, s.neighbours)
        with watch.time("normalised landmarks (Newton)"):
            normalised = normalised_landmarks(transform, points, template)
        with watch.time("normalise preview (canvas map + warp)"):
            _preview_warp(transform, first_frames[row.sample_id], canvas)
        with watch.time("sampling map + coverage 224x224"):  # stage crop
            affine = crop_affine(normalised, size, s.crop["width"], s.crop["above"], s.crop["below"])
            covered = np.empty((size, size), bool)
            map_x, map_y = sampling_maps(transform, affine, (size, size), coverage=covered)
        folder = out_dir / "cropped" / row.sample_id
        folder.mkdir(parents=True)
        numbers = needed_frames(row, s.crop["window"])
        for number in numbers:
            with watch.time(FLOOR):
                frame = imread(row.frames[row.frame_numbers.index(number)])
            with watch.time("remap + crop"):
                rgb = cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            with watch.time("PNG encode + write"):
                frame_file(folder, number).write_bytes(encode_png(rgb))
        with watch.time("PNG read-back (cache stage)"):  # stage cache
            windows = _read_windows(folder, row, s.crop["window"])
        with watch.time("HDF5 write (CacheWriter)"):
            writer.add(windows)
        output_frames += len(numbers)
    with watch.time("HDF5 write (CacheWriter)"):
        writer.close()
    return Breakdown(dict(watch.seconds), len(rows), output_frames,
                     sum(len(r.frames) for r in rows), detector_load)


def _preview_warp(transform: LWMTransform, frame: np.ndarray, canvas: int) -> np.ndarray:
    """What stage normalise does per clip for its preview: the first frame warped onto the canvas."""
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    map_x, map_y = sampling_maps(transform, identity, (canvas, canvas), coverage=np.empty((canvas, canvas), bool))
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _read_windows(folder: Path, row, k: int) -> ClipWindows:
    """Stage cache's read of one cropped clip (windows recomputed as crop's index.json holds them)."""
    return read_windows(folder, row, window(row.frame_numbers, row.onset, k), window(row.frame_numbers, row.apex, k),
                        depth=False)


def print_breakdown(b: Breakdown) -> float:
    """The step table; returns the whole preprocessing per output frame in decode floors."""
    floor = b.seconds[FLOOR] / b.output_frames
    print(f"\n1. Breakdown: {b.clips} clips, {b.output_frames} output frames "
          f"({b.output_frames / b.clips:.1f} per clip; {b.clip_frames / b.clips:.1f} manifest frames per clip)")
    print(f"{'step':<38}{'ms/clip':>9}{'ms/frame':>10}{'x floor':>9}")
    for step, seconds in sorted(b.seconds.items(), key=lambda kv: -kv[1]):
        per_frame = seconds / b.output_frames
        print(f"{step:<38}{1e3 * seconds / b.clips:>9.2f}{1e3 * per_frame:>10.3f}{per_frame / floor:>9.2f}")
    total = sum(b.seconds.values())
    ratio = total / b.output_frames / floor
    print(f"{'total':<38}{1e3 * total / b.clips:>9.2f}{1e3 * total / b.output_frames:>10.3f}{ratio:>9.2f}")
    landmarks = b.seconds["landmarks (dlib, per clip)"]
    print(f"landmarks amortised over all {b.clip_frames / b.clips:.1f} manifest frames of a clip: "
          f"{1e3 * landmarks / b.clip_frames:.3f} ms/frame = {landmarks / b.clip_frames / floor:.2f} x floor")
    print(f"without landmarks: {(total - landmarks) / b.output_frames / floor:.2f} x floor; "
          f"one-off dlib model load {b.detector_load:.2f} s (per process, not in the table)")
    verdict = "MET" if ratio <= GOAL else "NOT met"
    print(f"whole preprocessing per output frame = {ratio:.2f} x the decode floor "
          f"({1e3 * floor:.3f} ms): goal <= {GOAL:.0f}x {verdict}")
    return ratio


# ---------------------------------------------------------------- end to end (the stage code paths)


def landmarks_stage(clips: pd.DataFrame, s: Settings) -> tuple[list[ClipLandmarks], Template]:
    """Stage landmarks after `init_worker` (timed apart by the caller: a fixed cost per process)."""
    tasks = [(row.sample_id, row.frames[0]) for row in clips.itertuples()]
    found = list(map_clips(detect_clip, tasks, workers=1, desc="landmarks"))
    failed = [f for f in found if not isinstance(f, ClipLandmarks)]
    if failed:
        raise RuntimeError(f"landmarks failed on {len(failed)} clips, e.g. {failed[0]}")
    p = s.params["landmarks"]
    return found, choose_template(found, p["template"], p["canvas"], p["eye_distance"])


def normalise_stage(found: list[ClipLandmarks], template: Template, s: Settings) -> Normalised:
    canvas = s.params["landmarks"]["canvas"]
    transforms, landmarks = [], []
    for clip in found:
        transform = LWMTransform.fit(template.landmarks, clip.detection.landmarks, s.neighbours)
        transforms.append(transform)
        landmarks.append(normalised_landmarks(transform, clip.detection.landmarks, template.landmarks))
        _preview_warp(transform, read_rgb(clip.frame), canvas)
    return Normalised([c.sample_id for c in found], transforms, np.array(landmarks), template)


def crop_stage(clips: pd.DataFrame, norm: Normalised, s: Settings, out_dir: Path, workers: int) -> list[Cropped]:
    tasks = crop_tasks(clips.set_index("sample_id", drop=False), norm)
    work = functools.partial(crop_clip, settings=CropSettings.from_params(out_dir, s.crop))
    done = list(map_clips(work, tasks, workers=workers, desc=f"crop x{workers}"))
    failed = [d for d in done if not isinstance(d, Cropped)]
    if failed:
        raise RuntimeError(f"crop failed on {len(failed)} clips, e.g. {failed[0]}")
    return done


def cache_stage(clips: pd.DataFrame, done: list[Cropped], s: Settings, crop_dir: Path, path: Path) -> None:
    by_id = clips.set_index("sample_id", drop=False)
    writer = s.cache_writer(path, len(done))
    for c in done:
        writer.add(read_windows(crop_dir / c.sample_id, by_id.loc[c.sample_id], c.onset_window, c.apex_window,
                                c.depth))
    writer.close()


def end_to_end(manifest_path: Path, params: dict, out_dir: Path) -> dict:
    """Run in a fresh process: every stage in-process; wall times, RSS after imports and peak RSS (MB)."""
    s = Settings(params)
    clips = manifest.read(manifest_path)
    result = {"clips": len(clips), "output_frames": sum(len(needed_frames(r, s.crop["window"]))
                                                        for r in clips.itertuples()),
              "rss_imports_mb": peak_rss_mb()}
    watch = Stopwatch()
    with watch.time("detector load"):
        init_worker("dlib", s.detector_options)
    with watch.time("landmarks"):
        found, template = landmarks_stage(clips, s)
    with watch.time("normalise"):
        norm = normalise_stage(found, template, s)
    with watch.time("crop"):
        done = crop_stage(clips, norm, s, out_dir / "cropped", workers=1)
    with watch.time("cache"):
        cache_stage(clips, done, s, out_dir / "cropped", out_dir / "cache.h5")
    return {**result, "seconds": dict(watch.seconds), "rss_peak_mb": peak_rss_mb()}


# ---------------------------------------------------------------- 2. scaling


def synthetic_config(params: dict, quick: bool, scale: int) -> SyntheticConfig:
    """params.yaml `synthesize`, with the subject count scaled (quick: 2 subjects x 1 clip per class)."""
    config = SyntheticConfig.from_params(params["synthesize"])
    return replace(config, subjects=(2 if quick else config.subjects) * scale,
                   clips_per_class=1 if quick else config.clips_per_class)


def make_set(root: Path, config: SyntheticConfig, params: dict, detector: DlibDetector) -> Path:
    """Generate a synthetic set under `root`, ingest it like stage `ingest`; return its manifest."""
    generate(root, config, detector)
    name = params["dataset"]["protocol"]
    protocol = Protocol.from_params(name, params["protocols"])
    result = ingest("casme2", root / "CASME2_RAW_selected", root / "CASME2-coding-synthetic.xlsx", protocol,
                    apex_repair=params["ingest"]["apex_repair"], margin=params["ingest"]["margin_frames"])
    path = root / "manifest.csv"
    manifest.write(path, result.clips, protocol)
    return path


def scaling(params: dict, quick: bool, tmp: Path) -> None:
    detector = DlibDetector(**Settings(params).detector_options)
    spawn = multiprocessing.get_context("spawn")
    print("\n2. Scaling (end to end, 1 process, fresh interpreter per scale; seconds exclude the detector load)")
    print(f"{'scale':>5}{'clips':>7}{'frames':>8}{'load s':>8}{'total s':>9}{'s/clip':>8}{'ms/frame':>10}"
          f"{'landmarks':>10}{'normalise':>10}{'crop':>7}{'cache':>7}{'RSS imports':>13}{'RSS peak':>10}")
    for scale in SCALES:
        root = tmp / f"scale{scale}"
        path = make_set(root / "data", synthetic_config(params, quick, scale), params, detector)
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            r = pool.submit(end_to_end, path, params, root / "out").result()
        seconds = r["seconds"]
        total = sum(seconds.values()) - seconds["detector load"]
        print(f"{scale:>4}x{r['clips']:>7}{r['output_frames']:>8}{seconds['detector load']:>8.2f}"
              f"{total:>9.2f}{total / r['clips']:>8.3f}"
              f"{1e3 * total / r['output_frames']:>10.2f}{seconds['landmarks']:>10.2f}{seconds['normalise']:>10.2f}"
              f"{seconds['crop']:>7.2f}{seconds['cache']:>7.2f}{r['rss_imports_mb']:>11.0f}MB{r['rss_peak_mb']:>8.0f}MB")


# ---------------------------------------------------------------- 3. parallel crop


def parallel_crop(clips: pd.DataFrame, s: Settings, tmp: Path) -> None:
    init_worker("dlib", s.detector_options)
    found, template = landmarks_stage(clips, s)
    norm = normalise_stage(found, template, s)
    print(f"\n3. Parallel crop step (mer.parallel.map_clips, {len(clips)} clips)")
    base = None
    for workers in (1, 2):
        start = time.perf_counter()
        crop_stage(clips, norm, s, tmp / f"crop-workers{workers}", workers)
        seconds = time.perf_counter() - start
        base = base or seconds
        print(f"workers={workers}: {seconds:.2f} s, {1e3 * seconds / len(clips):.1f} ms/clip, "
              f"speed-up {base / seconds:.2f}x")


# ---------------------------------------------------------------- main


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    versions = ", ".join(f"{name} {version(dist)}" for name, dist in
                         (("torch", "torch"), ("opencv", "opencv-contrib-python-headless"),
                          ("dlib", "dlib-bin"), ("h5py", "h5py"), ("numpy", "numpy")))
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, nproc {os.cpu_count()}, {model}, "
            f"python {platform.python_version()}, {versions} (cv2 {cv2.__version__})\n{load()}")


def load() -> str:
    """Timings are wall clock: a busy machine inflates them, so print what else was running."""
    return "load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", default="data/manifest.csv")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_CLIPS} manifest clips; scaling from 8 synthetic clips instead of 48")
    args = parser.parse_args()

    params = load_params(args.params)
    settings = Settings(params)
    clips = manifest.read(args.manifest)
    if args.quick:
        clips = clips.head(QUICK_CLIPS)
    print(machine())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mer-bench-") as tmp:
        print_breakdown(breakdown(clips, settings, Path(tmp) / "breakdown"))
        scaling(params, args.quick, Path(tmp))
        parallel_crop(clips, settings, Path(tmp))
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; {load()}")


if __name__ == "__main__":
    main()
