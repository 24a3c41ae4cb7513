"""CASME II: `CASME2-coding-*.xlsx` + `subNN/<Filename>/img<n>.jpg` (or the cropped `reg_img<n>.jpg`)."""
from __future__ import annotations

import re
from pathlib import Path

from mer.datasets import frames
from mer.datasets.keyframes import row_key_frames
from mer.datasets.records import Clip, ReadResult, Row, read_rows, selected_clip
from mer.datasets.tables import cell_text, column, load_table, parse_frame

FRAME_PATTERN = re.compile(r"(?:reg_)?img(\d+)\.jpg", re.IGNORECASE)


def subject_folder(subject: int) -> str:
    return f"sub{subject:02d}"


def read(root: str | Path, labels: str | Path, apex_repair: str = "middle", margin: int = 4) -> ReadResult:
    """Read the coding table at `labels` and resolve every row's frames under `root`."""
    root, labels = Path(root), Path(labels)
    table = load_table(labels)
    cols = {
        "subject": column(table, labels, "Subject"),
        "clip": column(table, labels, "Filename"),
        "onset": column(table, labels, "OnsetFrame", "Onset Frame"),
        "apex": column(table, labels, "ApexFrame", "Apex Frame"),
        "offset": column(table, labels, "OffsetFrame", "Offset Frame"),
        "emotion": column(table, labels, "Estimated Emotion", "Emotion"),
    }

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        clip_name = row.sample_id = cell_text(cells[cols["clip"]])
        subject = subject_folder(parse_frame(cells[cols["subject"]], "subject"))
        row.sample_id = f"{subject}/{clip_name}"
        result.subjects.add(subject)
        onset, apex, offset, repaired = row_key_frames(cells, cols, apex_repair)
        folder = frames.inside(root, subject, clip_name)
        available = frames.list_frames(folder, FRAME_PATTERN)
        sel = frames.select(available, onset, apex, offset, margin, where=str(folder))
        return selected_clip(row, subject, clip_name, cell_text(cells[cols["emotion"]]), sel, available, repaired)

    return read_rows(table, labels, read_row)
