"""MMEW: `MMEW_Micro_Exp.xlsx` + `<emotion>/<Filename>/<n>.jpg`, n from 1.

`root` is the release's `Micro_Expression` folder. Frames sit in a folder per EMOTION, not per
subject; its name is matched to the table's emotion case-insensitively. Subjects are
normalised to `S01` however the cell was typed (`S01`, `s1`, `1`), so clip ids are stable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mer.datasets import errata
from mer.datasets.folders import clip_in_folder, folder_names, locate_root
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.records import Clip, ReadResult, Row, read_rows
from mer.datasets.tables import cell_text, column, load_table, require_dataset

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
    root, labels = Path(root), Path(labels)
    table = load_table(labels)
    require_dataset(table, labels, "mmew")
    cols = {
        "subject": column(table, labels, "Subject"),
        "clip": column(table, labels, "Filename"),
        "onset": column(table, labels, "OnsetFrame", "Onset"),
        "apex": column(table, labels, "ApexFrame", "Apex"),
        "offset": column(table, labels, "OffsetFrame", "Offset"),
        "emotion": column(table, labels, "Estimated Emotion", "Emotion"),
    }
    fixes = errata.apply(table, labels, cols) if repair.errata else []
    root = locate_root(root, folder_names(table[cols["emotion"]], cell_text))
    folders = emotion_folders(root)

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        clip_name = row.sample_id = cell_text(cells[cols["clip"]])
        emotion = cell_text(cells[cols["emotion"]])
        subject = subject_id(cells[cols["subject"]])
        row.sample_id = f"{subject}/{clip_name}"
        result.subjects.add(subject)
        if not clip_name or not emotion:
            raise ValueError("filename or emotion is empty")
        return clip_in_folder(
            row,
            cols,
            repair,
            margin,
            subject,
            clip_name,
            emotion,
            root,
            (folders.get(emotion.lower(), emotion), clip_name),
            FRAME_PATTERN,
        )

    return read_rows(table, labels, read_row, fixes, root)
