"""Published corrections of the real label tables, kept as data with their source.

An erratum names the table file, the spreadsheet row, the clip that row must hold (subject /
filename as the cells read), the field, the value it must still have, and the correction. It
is applied only when all of these match, so a table of another version is never changed by
a correction meant for a different row; one that does not match is reported, not applied.
Applied corrections mark the row (`keyframes.ERRATA_COLUMN`), so the clip's `repairs` start
with "erratum" and ingest lists it.

CAS(ME)^3 part A (JpgIndex v2): from MEB (github tvaranka/meb, meb/datasets/datasets.py,
`CASME3A.data_frame`), which indexes the sheet as pandas reads it: index i is spreadsheet
row i + 2. Checked against the released table: each row below holds the clip and old value.
MEB's apex for row 130 is 123 (some summaries of it say 160).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mer.datasets.keyframes import ERRATA_COLUMN
from mer.datasets.tables import cell_text, parse_frame

MEB = "MEB, github.com/tvaranka/meb, meb/datasets/datasets.py"
CASME3_A = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"


@dataclass(frozen=True)
class Erratum:
    table: str  # file name of the label table
    row: int  # 1-based spreadsheet row
    clip: str  # "<Subject>/<Filename>" as the row's cells read
    field: str  # onset | apex | offset
    old: int
    new: int
    source: str
    why: str


ERRATA = (
    Erratum(CASME3_A, 130, "spNO.149/d", "apex", 83, 123, MEB, "apex before onset 112"),
    Erratum(CASME3_A, 710, "spNO.214/c", "offset", 3460, 34, MEB, "offset 3455 frames after onset 5"),
    Erratum(CASME3_A, 751, "spNO.216/d", "onset", 3647, 2647, MEB, "onset after apex 2668 and offset 2694"),
    Erratum(CASME3_A, 752, "spNO.216/e", "onset", 0, 1, MEB, "frame 0"),
    Erratum(CASME3_A, 752, "spNO.216/e", "apex", 0, 1, MEB, "frame 0"),
    Erratum(CASME3_A, 798, "spNO.40/e", "offset", 0, 1845, MEB, "offset 0"),
    Erratum(CASME3_A, 800, "spNO.40/e", "offset", 0, 2403, MEB, "offset 0"),
)


def apply(table: pd.DataFrame, labels: Path, cols: dict[str, str]) -> list[dict]:
    """Apply in place the errata of the table file `labels`; one report entry per erratum,
    `applied` false (with the reason) when the row no longer holds what the erratum corrects."""
    table[ERRATA_COLUMN] = ""
    position = {int(r): i for i, r in enumerate(table["_row"])}
    report = []
    for e in (e for e in ERRATA if e.table.lower() == labels.name.lower()):
        entry = {
            "row": e.row,
            "clip": e.clip,
            "field": e.field,
            "old": e.old,
            "new": e.new,
            "why": e.why,
            "source": e.source,
            "applied": False,
        }
        report.append(entry)
        if e.row not in position:
            entry["not_applied"] = "row not in the table"
            continue
        cells = table.iloc[position[e.row]]
        clip = f"{cell_text(cells[cols['subject']])}/{cell_text(cells[cols['clip']])}"
        try:
            value = parse_frame(cells[cols[e.field]], e.field)
        except ValueError as exc:
            value, entry["not_applied"] = None, str(exc)
        if clip != e.clip or value != e.old:
            entry.setdefault("not_applied", f"row holds {clip} {e.field} {value}")
            continue
        label = table.index[position[e.row]]
        table.at[label, cols[e.field]] = e.new
        table.at[label, ERRATA_COLUMN] = f"{cells[ERRATA_COLUMN]} {e.field}".strip()
        entry["applied"] = True
    return report
