"""CASME II: `CASME2-coding-*.xlsx` + `subNN/<Filename>/img<n>.jpg` (or the cropped `reg_img<n>.jpg`)."""
from __future__ import annotations

import re
from pathlib import Path

from mer.datasets import frames
from mer.datasets.keyframes import key_frames
from mer.datasets.records import Clip, ReadResult, Rejection
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
    result = ReadResult()
    for _, row in table.iterrows():
        source = f"{labels}:row {row['_row']}"
        clip_name = sample_id = cell_text(row[cols["clip"]])
        try:
            subject = subject_folder(parse_frame(row[cols["subject"]], "subject"))
            sample_id = f"{subject}/{clip_name}"
            result.subjects.add(subject)
            onset, apex, offset, repaired = key_frames(
                row[cols["onset"]], row[cols["apex"]], row[cols["offset"]], apex_repair)
            folder = frames.inside(root, subject, clip_name)
            available = frames.list_frames(folder, FRAME_PATTERN)
            sel = frames.select(available, onset, apex, offset, margin, where=str(folder))
        except ValueError as exc:
            result.rejected.append(Rejection(source, str(exc), sample_id))
            continue
        result.clips.append(Clip(
            subject=subject, clip=clip_name, onset=sel.onset, apex=sel.apex, offset=sel.offset,
            emotion=cell_text(row[cols["emotion"]]).lower(), frames=[str(available[n]) for n in sel.numbers],
            frame_numbers=sel.numbers, source=source, apex_repaired=repaired))
    return result
