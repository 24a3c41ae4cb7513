"""SMIC (HS, as in SMIC-E): `<subject>/micro/<emotion>/<clip>/image<n>.bmp`, no label table.

The release labels by folder: the emotion folder (positive, negative, surprise) is the label and
each clip folder holds just the micro-expression, 100 fps. So onset and offset are the clip's
first and last frame, and the apex, never labelled, comes from the `apex_missing` rule (middle
of onset..offset, as MEB and the MEGC 2019 code do; every clip is listed under that repair).
`dataset.labels` names the same folder as `dataset.root`: there is no table to read. The
subject folders (`s1`, `s2`, ...) may sit up to 3 levels below `root` (`SMIC_all_raw/HS/`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from mer.datasets import frames
from mer.datasets.folders import locate_root
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair, key_frames
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import Clip, IngestError, ReadResult, Rejection, Row, selected_clip

SPEC = ReaderSpec(
    format="smic",
    folders="s1 .. s20, each micro/<emotion>/<clip>",
    frames="image<n>.bmp",
    labels=frozenset({"positive", "negative", "surprise"}),
    table=False,
)
FRAME_PATTERN = re.compile(r"(?:reg_)?image(\d+)\.(?:bmp|jpg|png)", re.IGNORECASE)
SUBJECT_PATTERN = re.compile(r"s(\d+)", re.IGNORECASE)
SUBJECT_NAMES = [f"s{i}" for i in range(1, 41)] + [f"s{i:02d}" for i in range(1, 10)]
MICRO = "micro"


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Every clip folder under `root`'s subjects; `labels` is unused (SMIC has no table)."""
    root = locate_root(Path(root), SUBJECT_NAMES)
    subjects = sorted(_dirs(root, SUBJECT_PATTERN))
    if not subjects:
        raise IngestError(f"{root}: no SMIC subject folders (s1, s2, ...) found here or up to 3 levels below")
    result = ReadResult(data_root=str(root))
    for subject in subjects:
        for emotion in sorted(_dirs(root / subject / MICRO)):
            for clip in sorted(_dirs(root / subject / MICRO / emotion)):
                folder = root / subject / MICRO / emotion / clip
                row = Row(pd.Series(dtype=object), str(folder), f"{subject}/{clip}")
                result.subjects.add(subject)
                try:
                    result.clips.append(_clip(row, subject, clip, emotion, folder, repair, margin))
                except ValueError as exc:
                    result.rejected.append(Rejection(row.source, str(exc), row.sample_id))
    return result


def _clip(row: Row, subject: str, clip: str, emotion: str, folder: Path, repair: Repair, margin: int) -> Clip:
    available = frames.list_frames(folder, FRAME_PATTERN)
    if not available:
        raise ValueError(f"no frame files named image<n>.bmp in {folder}")
    keys = key_frames(min(available), "/", max(available), repair)
    sel = frames.select(available, keys.onset, keys.apex, keys.offset, margin, where=str(folder))
    return selected_clip(row, subject, clip, emotion, sel, available, keys.repairs)


def _dirs(folder: Path, pattern: re.Pattern[str] | None = None) -> list[str]:
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return [e.name for e in entries if e.is_dir() and (pattern is None or pattern.fullmatch(e.name))]
