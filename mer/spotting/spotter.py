"""Where the micro-expressions are: the apex inside a labelled interval, and candidate intervals in a long
recording.

Interval spotting (`spot`) follows the MEGC spotting baseline of Li et al.: a per-frame signal (here the
face regions' second-difference motion, motion.py, with k = `k_seconds` at the recording's frame rate, half
a typical micro-expression), a threshold relative to the recording's own signal T = mean + p * (max - mean),
and peaks above it at least k frames apart (scipy.signal.find_peaks). Each peak becomes an interval from the
displacement of the peak's region from a neutral frame (`max_seconds` before it): the apex is its largest
displacement near the peak, onset and offset the last frames before and the first after the apex at which the
displacement is at most `boundary` times the apex's. Rejected: peaks whose eye regions move more than
`eye_ratio` times the face regions (blinks), intervals longer than `max_seconds` (not micro), and the weaker
of two overlapping intervals (a peak's side lobes k frames away find the same movement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from mer.spotting.motion import Flow, displacement, make_flow, second_difference
from mer.spotting.recording import Recording
from mer.spotting.regions import Regions, regions


@dataclass(frozen=True)
class SpotConfig:
    flow: str = "dis_fast"  # dis_ultrafast | dis_fast | dis_medium | farneback (motion.py)
    k_seconds: float = 0.13  # half a typical micro-expression's length
    p: float = 0.3  # threshold T = mean + p * (max - mean) of the recording's signal
    floor_px: float = 0.5  # and never below this motion, px (a recording with no micro-expression)
    eye_ratio: float = 1.5  # a peak whose eyes move more than this times the face is a blink
    boundary: float = 0.15  # onset/offset: displacement at most this fraction of the apex's
    max_seconds: float = 0.5  # longer intervals are not micro-expressions

    @classmethod
    def from_params(cls, p: dict) -> SpotConfig:
        """From the `spot` block of params.yaml."""
        return cls(
            flow=p["flow"],
            k_seconds=p["k_seconds"],
            p=p["p"],
            floor_px=p["floor_px"],
            eye_ratio=p["eye_ratio"],
            boundary=p["boundary"],
            max_seconds=p["max_seconds"],
        )


@dataclass(frozen=True)
class Interval:
    onset: int  # frame numbers of the recording
    apex: int
    offset: int
    score: float  # the face signal at the peak, px
    region: str  # the face region that moved most


@dataclass(frozen=True)
class Spotting:
    intervals: list[Interval]
    rejected: list[tuple[int, str]]  # (frame number of the peak, why)
    signal: np.ndarray  # (N,) face signal, px (NaN at the ends)
    eyes: np.ndarray  # (N,) eye signal, px
    threshold: float


def apex_in_interval(recording: Recording, onset: int, offset: int, flow: str = "dis_fast") -> int:
    """The frame number, onset..offset, at which the face regions are displaced most from the onset frame."""
    first, last = _index(recording, onset), _index(recording, offset)
    if last <= first:
        return int(recording.numbers[first])
    roi = regions(recording.landmarks)
    moved = displacement(recording.faces, first, range(first, last + 1), roi, make_flow(flow))[:, : roi.faces]
    return int(recording.numbers[first + int(np.argmax(moved.max(1)))])


def spot(recording: Recording, config: SpotConfig) -> Spotting:
    """Candidate micro-expression intervals of a recording, strongest first."""
    flow = make_flow(config.flow)
    roi = regions(recording.landmarks)
    k = max(1, round(config.k_seconds * recording.fps))
    longest = max(2, round(config.max_seconds * recording.fps))
    motion = second_difference(recording.faces, k, roi, flow)
    signal, eyes = motion[:, : roi.faces].max(1), motion[:, roi.eyes].max(1)
    valid = signal[np.isfinite(signal)]
    if valid.size == 0:
        raise ValueError(f"{recording.name}: {len(signal)} frames are too few for k = {k} frames")
    threshold = max(float(valid.mean() + config.p * (valid.max() - valid.mean())), config.floor_px)
    peaks, _ = find_peaks(np.nan_to_num(signal), height=threshold, distance=k)
    intervals: list[Interval] = []
    rejected: list[tuple[int, str]] = []
    for peak in sorted(peaks, key=lambda i: -signal[i]):
        number = int(recording.numbers[peak])
        if eyes[peak] > config.eye_ratio * signal[peak]:
            rejected.append((number, f"blink: eyes {eyes[peak]:.2f} px, face {signal[peak]:.2f} px"))
            continue
        interval = _interval(recording, roi, flow, int(peak), k, config, motion[peak])
        if interval.offset - interval.onset > longest:
            rejected.append((number, f"{interval.offset - interval.onset} frames, longer than max_seconds"))
        elif any(_overlap(interval, kept) for kept in intervals):
            rejected.append((number, "overlaps a stronger interval"))
        else:
            intervals.append(interval)
    return Spotting(intervals, rejected, signal, eyes, threshold)


def _interval(
    recording: Recording, roi: Regions, flow: Flow, peak: int, k: int, config: SpotConfig, motion: np.ndarray
) -> Interval:
    """The movement around a peak, from its region's displacement from a frame `max_seconds` earlier."""
    region = int(np.argmax(motion[: roi.faces]))
    longest = max(2, round(config.max_seconds * recording.fps))
    reference, end = max(0, peak - longest), min(len(recording.faces) - 1, peak + longest)
    moved = displacement(recording.faces, reference, range(reference, end + 1), roi, flow)[:, region]
    near = range(max(0, peak - k - reference), min(len(moved), peak + k - reference + 1))
    apex = near.start + int(np.argmax(moved[near.start : near.stop]))
    still = np.flatnonzero(moved <= config.boundary * moved[apex])
    onset = int(still[still < apex].max(initial=0))
    offset = int(still[still > apex].min(initial=len(moved) - 1))
    numbers = recording.numbers[reference:]
    return Interval(
        int(numbers[onset]), int(numbers[apex]), int(numbers[offset]), float(motion[region]), roi.names[region]
    )


def _overlap(a: Interval, b: Interval) -> bool:
    return a.onset <= b.offset and b.onset <= a.offset


def _index(recording: Recording, number: int) -> int:
    where = np.flatnonzero(recording.numbers == number)
    if where.size == 0:
        first, last = recording.numbers[0], recording.numbers[-1]
        raise ValueError(f"{recording.name}: no frame {number} (frames {first}..{last})")
    return int(where[0])
