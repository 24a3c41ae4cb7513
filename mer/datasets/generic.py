"""A generic clip manifest (CSV, or xlsx) for data sets without a dedicated reader.

Columns: subject, clip, onset, apex, offset, label (the raw emotion), frames_dir (relative to
root) and frame_pattern, a Python format string with one integer field (`img{}.jpg`,
`{:05d}.png`). Optional depth_dir/depth_pattern columns pair each colour frame with the depth
frame of the same number; a row with an empty depth_dir has no depth. The sample id is
`<subject>/<clip>`, so clip must be unique within a subject. Key frames must have files (in
both modalities with depth): nothing is stepped to a neighbour.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pandas as pd

from mer.datasets import frames
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair, row_key_frames
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import Clip, IngestError, ReadResult, Row, read_rows, selected_clip
from mer.datasets.tables import cell_text, column, load_table

SPEC = ReaderSpec(
    format="csv",
    folders="frames_dir of each manifest row",
    frames="frame_pattern of each manifest row",
    columns={
        "subject": ("subject",),
        "clip": ("clip",),
        "onset": ("onset",),
        "apex": ("apex",),
        "offset": ("offset",),
        "emotion": ("label", "emotion"),
        "frames_dir": ("frames_dir",),
        "frame_pattern": ("frame_pattern",),
    },
)
INTEGER_SPEC = re.compile(r"(?:0\d+)?d?")  # '', 'd', '05d', '05': digits only, never spaces or signs


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regex matching the file names `pattern` makes; the literal parts are escaped, not trusted."""
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"frame pattern {pattern!r} is not a format string ({exc})") from None
    fields = [(name, spec, conversion) for _, name, spec, conversion in parts if name is not None]
    name, spec, conversion = fields[0] if len(fields) == 1 else (None, "", None)
    if name not in ("", "0") or conversion or not INTEGER_SPEC.fullmatch(spec or ""):
        raise ValueError(f"frame pattern {pattern!r} must hold exactly one integer field, like {{}} or {{:05d}}")
    if "/" in pattern or "\\" in pattern:
        raise ValueError(f"frame pattern {pattern!r} must be a file name, not a path")
    return re.compile("".join(re.escape(text) + (r"(\d+)" if name is not None else "") for text, name, _, _ in parts))


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read the manifest at `labels` and resolve every row's frames under `root`."""
    root, labels = Path(root), Path(labels)
    table = load_table(labels)
    cols = {role: column(table, labels, *names) for role, names in SPEC.columns.items()}
    cols |= _depth_columns(table, labels)

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        subject, clip_name = cell_text(cells[cols["subject"]]), cell_text(cells[cols["clip"]])
        row.sample_id = f"{subject}/{clip_name}"
        if not subject or not clip_name:
            raise ValueError("subject or clip is empty")
        result.subjects.add(subject)
        keys = row_key_frames(cells, cols, repair)
        color = _frames(root, cells, cols, "frames_dir", "frame_pattern")
        depth = _frames(root, cells, cols, "depth_dir", "depth_pattern") if _has_depth(cells, cols) else None
        available = color if depth is None else color.keys() & depth.keys()
        where = str(root / cell_text(cells[cols["frames_dir"]])) + ("" if depth is None else " (colour and depth)")
        sel = keys.select(available, margin, where=where)
        emotion = cell_text(cells[cols["emotion"]])
        return selected_clip(row, subject, clip_name, emotion, sel, color, keys.repairs, depth)

    return read_rows(table, labels, read_row)


def _depth_columns(table: pd.DataFrame, labels: Path) -> dict[str, str]:
    """Both optional depth columns, or neither: one without the other is a broken manifest."""
    try:
        depth_dir = column(table, labels, "depth_dir")
    except IngestError:
        return {}
    return {"depth_dir": depth_dir, "depth_pattern": column(table, labels, "depth_pattern")}


def _has_depth(row: pd.Series, cols: dict[str, str]) -> bool:
    return "depth_dir" in cols and bool(cell_text(row[cols["depth_dir"]]))


def _frames(root: Path, row: pd.Series, cols: dict[str, str], dir_col: str, pattern_col: str) -> dict[int, Path]:
    folder, pattern = cell_text(row[cols[dir_col]]), cell_text(row[cols[pattern_col]])
    if not folder or not pattern:
        raise ValueError(f"{dir_col} or {pattern_col} is empty")
    return frames.list_frames(frames.inside(root, folder), pattern_regex(pattern))
