"""CASME II: `CASME2-coding-*.xlsx` + `subNN/<Filename>/img<n>.jpg` (or the cropped `reg_img<n>.jpg`).

Two releases of the coding table read alike: `CASME2-coding-20140508.xlsx` and `CASME2-coding-20190701.xlsx`,
which adds an `Objective Classes` column and codes some clips differently (MEGC 2019's published list follows
the 2014 table: mer/datasets/samples.py). The report names the layout read (`table_version`: 2014 or 2019),
told apart by that column.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer.datasets.coding import open_table, read_clip_folders
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import ReadResult
from mer.datasets.tables import normalise_name, parse_frame

SPEC = ReaderSpec(
    format="casme2",
    folders="sub01 .. sub26 (Subject zero-padded to 2 digits)",
    frames="img<n>.jpg (cropped release: reg_img<n>.jpg)",
    labels=frozenset({"happiness", "disgust", "repression", "surprise", "others", "fear", "sadness"}),
    columns={
        "subject": ("Subject",),
        "clip": ("Filename",),
        "onset": ("OnsetFrame", "Onset Frame"),
        "apex": ("ApexFrame", "Apex Frame"),
        "offset": ("OffsetFrame", "Offset Frame"),
        "emotion": ("Estimated Emotion", "Emotion"),
    },
)
FRAME_PATTERN = re.compile(r"(?:reg_)?img(\d+)\.jpg", re.IGNORECASE)
VERSIONS = {False: "2014", True: "2019"}  # has an Objective Classes column -> the table's release


def subject_folder(cell: object) -> str:
    """`sub01` for a Subject cell holding 1."""
    return f"sub{parse_frame(cell, 'subject'):02d}"


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read the coding table at `labels` and resolve every row's frames under `root`."""
    coding = open_table(SPEC, root, labels, repair, folder=subject_folder)
    result = read_clip_folders(
        coding, repair, margin, subject_folder, top=lambda subject, _: subject, pattern=lambda _: FRAME_PATTERN
    )
    result.table_version = VERSIONS[any(normalise_name(c).startswith("objectiveclass") for c in coding.table.columns)]
    return result
