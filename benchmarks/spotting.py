"""Spotting benchmark: the time to spot micro-expressions per minute of video, at 30 fps (CAS(ME)^3) and
200 fps (SAMM), and what each optical flow buys.

Why: spotting runs over whole recordings (MEGC's long videos are minutes long), so its cost per minute of
video decides whether `mer predict --spot` is interactive and what a data set's spot stage costs. For each
frame rate one synthetic long recording (mer/datasets/long_recordings.py, video off) is generated in a
temporary directory and timed in three parts, each the best of `--repeats`:

- load: decoding the JPEG frames and cutting them to the face box (the floor: any spotter reads them);
- spot: the second-difference signal over every frame (two flows per frame) and the intervals;
- apexes: the apex inside each labelled interval (one flow per frame of the interval).

Each flow (`spot.flow`) is timed at 30 fps with its spotting scores on the same recording, and the default
flow with OpenCV on one thread and on all cores. The figures are wall clock: the machine's load is printed.
Last, where the embedded set exists (data/synthetic after `dvc repro`), the apex inside each of its labelled
clips against its true apex, beside the error of ingest's `apex_repair: middle` rule.

Run from the repository root: ``python benchmarks/spotting.py [--quick] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import cv2
from common import load, machine

from mer.datasets.long_recordings import LongConfig, generate, read_labels
from mer.face.landmarks import DlibDetector
from mer.io import read_json
from mer.spotting.motion import FLOWS
from mer.spotting.recording import Recording
from mer.spotting.recording import load as load_recording
from mer.spotting.scoring import counts, error_summary, scores
from mer.spotting.spotter import SpotConfig, apex_in_interval, spot

T = TypeVar("T")
EMBEDDED = Path("data/synthetic")


def best(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """The shortest of `repeats` runs (other processes only add time), and the result."""
    times, results = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        results.append(fn())
        times.append(time.perf_counter() - started)
    return min(times), results[0]


def per_minute(seconds: float, recording: Recording) -> float:
    return seconds / (len(recording.numbers) / recording.fps) * 60


def measure(root: Path, fps: float, config: SpotConfig, detector: DlibDetector, repeats: int) -> dict:
    folder = root / "recordings" / "1"
    t_load, recording = best(lambda: load_recording(folder, detector, fps=fps), repeats)
    truth = read_labels(root / "labels.csv")["1"]
    t_spot, result = best(lambda: spot(recording, config), repeats)
    t_apex, apexes = best(lambda: [apex_in_interval(recording, e.onset, e.offset, config.flow) for e in truth], repeats)
    spotted = [(i.onset, i.offset) for i in result.intervals]
    c = counts(spotted, [(e.onset, e.offset) for e in truth])
    return {
        "load": per_minute(t_load, recording),
        "spot": per_minute(t_spot, recording),
        "apexes": per_minute(t_apex, recording),
        "frames": len(recording.numbers),
        "face": recording.faces.shape[1:],
        **c,
        **scores(c["tp"], c["fp"], c["fn"]),
        "apex_error": max(abs(a - e.apex) for a, e in zip(apexes, truth, strict=True)),
    }


def line(label: str, m: dict) -> str:
    return (
        f"{label:<34} {m['load']:7.1f} {m['spot']:7.1f} {m['apexes']:7.2f} {m['load'] + m['spot']:8.1f} "
        f"{m['spot'] / m['load']:6.1f}x   TP {m['tp']} FP {m['fp']} FN {m['fn']}  F1 {m['f1']:.2f}  "
        f"max apex error {m['apex_error']}"
    )


def embedded_apexes(root: Path, detector: DlibDetector) -> None:
    """The apex spotter on the embedded set's short clips (CASME II layout, true apexes known)."""
    clips = read_json(root / "synthetic.json")["clips"]
    started = time.perf_counter()
    spotted, middle = [], []
    for sample_id, info in clips.items():
        recording = load_recording(root / "CASME2_RAW_selected" / sample_id, detector, fps=200.0)
        spotted.append(abs(apex_in_interval(recording, info["onset"], info["offset"]) - info["apex"]))
        middle.append(abs((info["onset"] + info["offset"]) // 2 - info["apex"]))
    seconds = time.perf_counter() - started
    print(f"\nembedded set ({root}): apex inside the labelled interval of {len(clips)} clips, |error| in frames")
    for name, errors in (("spotted (apex_in_interval)", spotted), ("middle of onset..offset", middle)):
        e = error_summary(errors)
        print(f"  {name:<28} mean {e['mean']:.2f}  p90 {e['p90']:.1f}  max {e['max']}  exact {e['exact']}")
    print(f"  {seconds:.1f} s with loading; {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s at 30 fps, 8 s at 200 fps, 1 repeat")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    print(machine(("opencv-contrib-python-headless", "scipy")))
    print(f"OpenCV threads: {cv2.getNumThreads()}")
    detector = DlibDetector(upsample=1)
    base = LongConfig(recordings=1, events=4, blinks=3, video=False, seed=20261208)
    rates = {30.0: 10.0 if args.quick else 30.0, 200.0: 8.0 if args.quick else 15.0}
    header = f"{'':<34} {'load':>7} {'spot':>7} {'apexes':>7} {'total':>8} {'spot/load':>9}  (s per minute of video)"
    with tempfile.TemporaryDirectory() as tmp:
        for fps, seconds in rates.items():
            root = Path(tmp) / f"{fps:g}fps"
            config = replace(base, fps=fps, seconds=seconds)
            generate(root, config, detector)
            print(
                f"\n{fps:g} fps: one recording of {seconds:g} s ({config.frames(seconds)} frames), "
                f"{config.events} micro-expressions, {config.blinks} blinks"
            )
            print(header)
            flows = FLOWS if fps == 30.0 else ("dis_fast",)
            for flow in flows:
                m = measure(root, fps, SpotConfig(flow=flow), detector, repeats)
                print(line(f"flow {flow}" + (" (default)" if flow == SpotConfig.flow else ""), m))
            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            print(line("flow dis_fast, OpenCV on 1 thread", measure(root, fps, SpotConfig(), detector, repeats)))
            cv2.setNumThreads(threads)
            print(f"face box {m['face'][1]}x{m['face'][0]} px; {load()}")
    if (EMBEDDED / "synthetic.json").is_file():
        embedded_apexes(EMBEDDED, detector)


if __name__ == "__main__":
    main()
