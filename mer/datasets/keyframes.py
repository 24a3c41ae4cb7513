"""Check and repair a row's onset/apex/offset: the faults real label tables are known to hold."""
from __future__ import annotations

from collections.abc import Mapping

from mer.datasets.tables import MISSING_APEX, parse_apex, parse_frame

APEX_REPAIRS = ("middle", "reject")


def key_frames(onset_cell: object, apex_cell: object, offset_cell: object,
               apex_repair: str) -> tuple[int, int, int, bool]:
    """(onset, apex, offset, apex_repaired), or ValueError naming what is wrong.

    A missing apex ('/', -1 or empty) is repaired by `apex_repair`: `middle` puts it at
    (onset + offset) // 2, `reject` refuses the row.
    """
    if apex_repair not in APEX_REPAIRS:
        raise ValueError(f"apex_repair must be one of {APEX_REPAIRS}, got {apex_repair!r}")
    onset = parse_frame(onset_cell, "onset")
    offset = parse_frame(offset_cell, "offset")
    if offset < onset:
        raise ValueError(f"offset frame {offset} is before onset frame {onset}")
    apex = parse_apex(apex_cell)
    repaired = apex is MISSING_APEX
    if repaired:
        if apex_repair == "reject":
            raise ValueError(f"apex not labelled ({apex_cell!r})")
        apex = (onset + offset) // 2
    if not onset <= apex <= offset:
        raise ValueError(f"apex frame {apex} outside onset..offset {onset}..{offset}")
    return onset, apex, offset, repaired


def row_key_frames(cells: Mapping[str, object], cols: Mapping[str, str], apex_repair: str) -> tuple[int, int, int, bool]:
    """`key_frames` of a label-table row whose onset/apex/offset columns are `cols["onset"]`, ..."""
    return key_frames(cells[cols["onset"]], cells[cols["apex"]], cells[cols["offset"]], apex_repair)
