"""SAMM: `SAMM_Micro_FACS_Codes_v2.xlsx` + `<NNN>/<Filename>/<NNN>_<nnnnn>.jpg`.

The table opens with a block of free-text notes; `load_table` finds the header row by its
`Subject` cell, and columns are matched by name because their order differs between versions.
"""

from __future__ import annotations

import re
from pathlib import Path

from mer.datasets import errata
from mer.datasets.folders import clip_in_folder, folder_names, locate_root
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair
from mer.datasets.records import Clip, ReadResult, Row, read_rows
from mer.datasets.tables import cell_text, column, load_table, parse_frame, require_dataset

SHEET = "MICRO_ONLY"  # v2's sheet of micro-expressions; a table with one sheet is read as it is
# The emotion labels of the release (lower-cased): ingest rejects any other as a typo.
LABELS = frozenset({"anger", "contempt", "disgust", "fear", "happiness", "other", "others", "sadness", "surprise"})


def subject_folder(subject: int) -> str:
    return f"{subject:03d}"


def frame_pattern(subject: str) -> re.Pattern[str]:
    """`006_05562.jpg`: the subject folder's name, then the absolute frame number."""
    return re.compile(rf"{re.escape(subject)}_(\d+)\.jpg", re.IGNORECASE)


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read the FACS code table at `labels` and resolve every row's frames under `root`."""
    root, labels = Path(root), Path(labels)
    table = load_table(labels, sheets=(SHEET, 0))
    require_dataset(table, labels, "samm")
    cols = {
        "subject": column(table, labels, "Subject"),
        "clip": column(table, labels, "Filename"),
        "onset": column(table, labels, "Onset Frame"),
        "apex": column(table, labels, "Apex Frame"),
        "offset": column(table, labels, "Offset Frame"),
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
        if not clip_name:
            raise ValueError("filename is empty")
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
            frame_pattern(subject),
        )

    return read_rows(table, labels, read_row, fixes, root)
