"""The apex inside each clip's labelled interval, spotted on its normalised face: what stage apex@<data set> runs
when `ingest.apex_repair` is `spot`.

Each clip's frames onset..offset are warped onto the template canvas by its LWM transform (data/normalised.h5),
so the head's pose and the face's shape are the template's, and `apex_in_interval` (spotter.py) finds the frame
whose face regions (built on the clip's normalised landmarks) are displaced most from the onset. A row whose
apex ingest gave the middle under a rule set to `spot` (its `repairs` name the rule) gets that frame. Every
other clip with a normalised face is spotted too, as if its apex were missing, and compared with its labelled
apex: the check of the method on that data set (and, beside it, the error the `middle` rule would make).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pandas as pd

from mer.face.lwm import LWMTransform, sampling_maps
from mer.face.normalised_store import Normalised
from mer.failures import ClipError
from mer.images import read_rgb
from mer.spotting.recording import Recording
from mer.spotting.scoring import error_summary
from mer.spotting.spotter import apex_in_interval

APEX_RULES = ("apex_missing", "apex_outside")  # the keyframes rules that may leave an apex to spot


@dataclass(frozen=True)
class Apexes:
    manifest: pd.DataFrame  # the input manifest, the spotted apex in place of the middle on the rows spotted
    metrics: dict[str, Any]  # reports/apex.json


def normalised_faces(frames: list[str], transform: LWMTransform, canvas: tuple[int, int]) -> np.ndarray:
    """(n, height, width) uint8 grey: the frames registered onto the template canvas (width, height)."""
    width, height = canvas
    map_x, map_y = sampling_maps(transform, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (height, width))
    return np.stack(
        [
            cv2.cvtColor(
                cv2.remap(read_rgb(f), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                cv2.COLOR_RGB2GRAY,
            )
            for f in frames
        ]
    )


def spot_clip(row: Any, transform: LWMTransform, landmarks: np.ndarray, canvas: tuple[int, int], flow: str) -> int:
    """The frame number of a manifest row's apex, spotted in onset..offset on its normalised face."""
    numbers = list(row.frame_numbers)
    for name in ("onset", "offset"):
        if int(getattr(row, name)) not in numbers:
            raise ClipError(f"{name} frame {getattr(row, name)} is not among its frames {numbers[0]}..{numbers[-1]}")
    inside = [i for i, n in enumerate(numbers) if row.onset <= n <= row.offset]
    faces = normalised_faces([row.frames[i] for i in inside], transform, canvas)
    recording = Recording(
        str(row.sample_id),
        float("nan"),  # no frame rate: the apex inside an interval counts frames, not seconds
        np.array([numbers[i] for i in inside]),
        faces,
        landmarks,
    )
    return apex_in_interval(recording, int(row.onset), int(row.offset), flow)


def spot_apexes(manifest: pd.DataFrame, norm: Normalised, rules: Collection[str], flow: str) -> Apexes:
    """Spot the apex of every normalised clip of `manifest`; replace it on the rows repaired by one of `rules`.

    Clips without a normalised face (lost by the landmarks stage) keep their row as it is: they are never cropped.
    """
    unknown = set(rules) - set(APEX_RULES)
    if unknown:
        raise ValueError(f"not an apex rule: {sorted(unknown)} (the apex rules are {', '.join(APEX_RULES)})")
    rows: dict[str, Any] = {str(row.sample_id): row for row in manifest.itertuples(index=False)}
    missing = [s for s in norm.sample_ids if s not in rows]
    if missing:
        raise ValueError(f"clip {missing[0]} is in the normalised faces but not in the manifest ({len(missing)} such)")
    spotted: dict[str, int] = {}
    errors, middle_errors = [], []
    for sample_id, transform, landmarks in zip(norm.sample_ids, norm.transforms, norm.landmarks, strict=True):
        row = rows[sample_id]
        try:
            apex = spot_clip(row, transform, landmarks, norm.template.canvas, flow)
        except (ClipError, ValueError) as exc:
            raise ValueError(f"clip {sample_id} ({row.source}): {exc}") from None
        repairs = set(str(row.repairs).split(";")) if row.repairs else set()
        if repairs & set(rules):
            spotted[sample_id] = apex
        elif not repairs & set(APEX_RULES):  # a labelled apex: the check of the method
            errors.append(abs(apex - int(row.apex)))
            middle_errors.append(abs((int(row.onset) + int(row.offset)) // 2 - int(row.apex)))
    out = manifest.copy()
    chosen = out["sample_id"].astype(str).map(spotted)
    out["apex"] = chosen.fillna(out["apex"]).astype(int)
    return Apexes(out, _metrics(len(norm.sample_ids), spotted, rows, rules, errors, middle_errors))


def _metrics(
    clips: int, spotted: dict[str, int], rows: dict[str, Any], rules: Collection[str], errors: list, middle: list
) -> dict[str, Any]:
    by_rule = {rule: sum(rule in str(rows[s].repairs).split(";") for s in spotted) for rule in rules}
    return {
        "clips": clips,
        "spotted": len(spotted),
        "spotted_by_rule": by_rule,
        "spotted_clips": sorted(spotted),
        "labelled": len(errors),
        "apex_error": error_summary(errors),
        "middle_error": error_summary(middle),
    }
