"""MMEW: `MMEW_Micro_Exp.xlsx` + `<emotion>/<Filename>/<n>.jpg`, n from 1.

`root` is the release's `Micro_Expression` folder. Frames sit in a folder per EMOTION, not per
subject; its name is matched to the table's emotion case-insensitively. Subjects are
normalised to `S01` however the cell was typed (`S01`, `s1`, `1`), so clip ids are stable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mer.datasets.coding import open_table, read_clip_folders
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import ReadResult
from mer.datasets.tables import cell_text

SPEC = ReaderSpec(
    format="mmew",
    folders="one folder per emotion (happiness, surprise, ...)",
    frames="<n>.jpg, n from 1",
    columns={
        "subject": ("Subject",),
        "clip": ("Filename",),
        "onset": ("OnsetFrame", "Onset"),
        "apex": ("ApexFrame", "Apex"),
        "offset": ("OffsetFrame", "Offset"),
        "emotion": ("Estimated Emotion", "Emotion"),
    },
)
FRAME_PATTERN = re.compile(r"(\d+)\.jpg", re.IGNORECASE)
SUBJECT_PATTERN = re.compile(r"S?(\d+)(?:\.0)?", re.IGNORECASE)


def subject_id(value: object) -> str:
    """`S01` for a Subject cell holding `S01`, `s1`, `1` or `1.0`."""
    text = cell_text(value)
    match = SUBJECT_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"subject is not of the form S01: {text!r}")
    return f"S{int(match.group(1)):02d}"


def emotion_folders(root: Path) -> dict[str, str]:
    """Lower-cased name -> actual name of the emotion folders under `root`."""
    if not root.is_dir():
        return {}
    with os.scandir(root) as entries:
        return {e.name.lower(): e.name for e in entries if e.is_dir()}


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read the label table at `labels` and resolve every row's frames under `root`."""
    coding = open_table(SPEC, root, labels, repair, top="emotion")
    folders = emotion_folders(coding.root)
    return read_clip_folders(
        coding,
        repair,
        margin,
        subject_id,
        top=lambda _, emotion: folders.get(emotion.lower(), emotion),
        pattern=lambda _: FRAME_PATTERN,
        required=("clip", "emotion"),
    )
