"""A release's coding table read as its reader's spec says, and the rows of the releases whose clip frames all
sit in one folder (CASME II, SAMM, MMEW) read into clips.

`open_table` is the shape every coded release shares (CASME II, SAMM, MMEW, CAS(ME)^3): the table's sheet
and header, refused when it is another data set's, its columns found by the names the spec lists, the
published errata applied (mer/datasets/errata.py), and the folder below `dataset.root` that holds the
folders its rows name (mer.datasets.folders.locate_root). `read_clip_folders` reads its rows when each clip
is a folder `<top>/<Filename>/` of frame files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mer.datasets import errata, frames
from mer.datasets.folders import folder_names, locate_root
from mer.datasets.keyframes import Repair, row_key_frames
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import Clip, ReadResult, Row, read_rows, selected_clip
from mer.datasets.tables import cell_text, column, load_table, require_dataset

WORDS = {"clip": "filename"}  # a role as a rejection names its empty cell


@dataclass(frozen=True)
class CodingTable:
    table: pd.DataFrame
    labels: Path
    cols: dict[str, str]  # role -> the table's column
    errata: list[dict]  # the published corrections, applied or not
    root: Path  # the folder holding the folders the rows name

    def read(self, read_row: Callable[[Row, ReadResult], Clip]) -> ReadResult:
        """Every row through `read_row` (mer.datasets.records.read_rows), the errata and root reported."""
        return read_rows(self.table, self.labels, read_row, self.errata, self.root)


def open_table(
    spec: ReaderSpec,
    root: str | Path,
    labels: str | Path,
    repair: Repair,
    top: str = "subject",
    folder: Callable[[object], str] = cell_text,
) -> CodingTable:
    """The coding table at `labels`; its root is found below `root` by the folders `folder` names from the
    cells of the `top` column."""
    labels = Path(labels)
    table = load_table(labels, sheets=spec.sheets)
    require_dataset(table, labels, spec.format)
    cols = {role: column(table, labels, *names) for role, names in spec.columns.items()}
    fixes = errata.apply(table, labels, cols) if repair.errata else []
    return CodingTable(table, labels, cols, fixes, locate_root(Path(root), folder_names(table[cols[top]], folder)))


def read_clip_folders(
    coding: CodingTable,
    repair: Repair,
    margin: int,
    subject: Callable[[object], str],
    top: Callable[[str, str], str],
    pattern: Callable[[str], re.Pattern[str]],
    required: tuple[str, ...] = (),
) -> ReadResult:
    """Each row's clip from the frames in `root/<top(subject, emotion)>/<Filename>/` named by `pattern(subject)`:
    key frames checked first (mer.datasets.keyframes), then the frames around them selected.

    `subject` turns the Subject cell into the subject id (a ValueError rejects the row); a row with an empty
    cell among the `required` roles is rejected, its subject still counted.
    """
    cols = coding.cols

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        clip = row.sample_id = cell_text(cells[cols["clip"]])
        emotion = cell_text(cells[cols["emotion"]])
        name = subject(cells[cols["subject"]])
        row.sample_id = f"{name}/{clip}"
        result.subjects.add(name)
        if any(not cell_text(cells[cols[role]]) for role in required):
            raise ValueError(f"{' or '.join(WORDS.get(role, role) for role in required)} is empty")
        keys = row_key_frames(cells, cols, repair)
        folder = frames.inside(coding.root, top(name, emotion), clip)
        available = frames.list_frames(folder, pattern(name))
        sel = keys.select(available, margin, where=str(folder))
        return selected_clip(row, name, clip, emotion, sel, available, keys.repairs)

    return coding.read(read_row)
