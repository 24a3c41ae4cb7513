"""SAMM: `SAMM_Micro_FACS_Codes_v2.xlsx` + `<NNN>/<Filename>/<NNN>_<nnnnn>.jpg`.

The table opens with a block of free-text notes; `load_table` finds the header row by its
`Subject` cell, and columns are matched by name because their order differs between versions.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer.datasets.coding import open_table, read_clip_folders
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import ReadResult
from mer.datasets.tables import parse_frame

SPEC = ReaderSpec(
    format="samm",
    folders="006 .. 037 (Subject zero-padded to 3 digits)",
    frames="<subject>_<5-digit frame>.jpg, e.g. 006_05562.jpg",
    labels=frozenset({"anger", "contempt", "disgust", "fear", "happiness", "other", "others", "sadness", "surprise"}),
    columns={
        "subject": ("Subject",),
        "clip": ("Filename",),
        "onset": ("Onset Frame",),
        "apex": ("Apex Frame",),
        "offset": ("Offset Frame",),
        "emotion": ("Estimated Emotion", "Emotion"),
    },
    sheets=("MICRO_ONLY", 0),  # v2's sheet of micro-expressions; a table with one sheet is read as it is
)


def subject_folder(cell: object) -> str:
    """`006` for a Subject cell holding 6."""
    return f"{parse_frame(cell, 'subject'):03d}"


def frame_pattern(subject: str) -> re.Pattern[str]:
    """`006_05562.jpg`: the subject folder's name, then the absolute frame number."""
    return re.compile(rf"{re.escape(subject)}_(\d+)\.jpg", re.IGNORECASE)


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read the FACS code table at `labels` and resolve every row's frames under `root`."""
    coding = open_table(SPEC, root, labels, repair, folder=subject_folder)
    return read_clip_folders(
        coding,
        repair,
        margin,
        subject_folder,
        top=lambda subject, _: subject,
        pattern=frame_pattern,
        required=("clip",),
    )
