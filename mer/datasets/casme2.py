"""CASME II: `CASME2-coding-*.xlsx` + `subNN/<Filename>/img<n>.jpg` (or the cropped `reg_img<n>.jpg`).

Two releases of the coding table read alike: `CASME2-coding-20140508.xlsx` and `CASME2-coding-20190701.xlsx`,
which adds an `Objective Classes` column and codes some clips differently (MEGC 2019's published list follows
the 2014 table: mer/datasets/samples.py). The report names the layout read (`table_version`: 2014 or 2019),
told apart by that column.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer.datasets import errata
from mer.datasets.folders import clip_in_folder, folder_names, locate_root
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.records import Clip, ReadResult, Row, read_rows
from mer.datasets.tables import cell_text, column, load_table, normalise_name, parse_frame, require_dataset

FRAME_PATTERN = re.compile(r"(?:reg_)?img(\d+)\.jpg", re.IGNORECASE)
# The emotion labels of the release (lower-cased): ingest rejects any other as a typo.
LABELS = frozenset({"happiness", "disgust", "repression", "surprise", "others", "fear", "sadness"})
VERSIONS = {False: "2014", True: "2019"}  # has an Objective Classes column -> the table's release


def subject_folder(subject: int) -> str:
    return f"sub{subject:02d}"


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read the coding table at `labels` and resolve every row's frames under `root`."""
    root, labels = Path(root), Path(labels)
    table = load_table(labels)
    require_dataset(table, labels, "casme2")
    cols = {
        "subject": column(table, labels, "Subject"),
        "clip": column(table, labels, "Filename"),
        "onset": column(table, labels, "OnsetFrame", "Onset Frame"),
        "apex": column(table, labels, "ApexFrame", "Apex Frame"),
        "offset": column(table, labels, "OffsetFrame", "Offset Frame"),
        "emotion": column(table, labels, "Estimated Emotion", "Emotion"),
    }
    fixes = errata.apply(table, labels, cols) if repair.errata else []
    root = locate_root(root, folder_names(table[cols["subject"]], lambda c: subject_folder(parse_frame(c, "subject"))))

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        clip_name = row.sample_id = cell_text(cells[cols["clip"]])
        subject = subject_folder(parse_frame(cells[cols["subject"]], "subject"))
        row.sample_id = f"{subject}/{clip_name}"
        result.subjects.add(subject)
        return clip_in_folder(
            row,
            cols,
            repair,
            margin,
            subject,
            clip_name,
            cell_text(cells[cols["emotion"]]),
            root,
            (subject, clip_name),
            FRAME_PATTERN,
        )

    result = read_rows(table, labels, read_row, fixes, root)
    result.table_version = VERSIONS[any(normalise_name(c).startswith("objectiveclass") for c in table.columns)]
    return result
