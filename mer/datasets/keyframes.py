"""Check and repair a row's onset/apex/offset: the faults real label tables are known to hold.

Published corrections (`mer.datasets.errata`) are applied to the table first; these rules then
repair what is left. Each rule is an `ingest` switch in params.yaml, applied in this order and
named in the clip's `repairs`, so ingest counts every repair per rule and lists its clips:

  offset_invalid  offset empty or before the onset (CAS(ME)^3 rows 751; 798, 800 hold 0): `mirror`
                  sets it to apex + (apex - onset), a decay as long as the rise (the onset itself
                  when the apex is not after it; readers then clamp it to the last frame on disk)
  apex_missing    apex '/', -1 or empty (CASME II, SAMM): `middle` = (onset + offset) // 2
  apex_outside    apex before the onset or after the offset (SAMM 028_4_1, 032_3_1; CAS(ME)^3
                  row 130): `middle` = (onset + offset) // 2

Each rule also takes `reject`, which refuses the row instead. The two apex rules also take `spot`: ingest
writes the middle and names the rule, and stage apex@<data set> (mer/spotting/apex.py) replaces it with the
frame of largest facial motion from the onset, on the normalised face; `apex_outside: spot` needs
`apex_repair: spot`, which is what adds that stage. A row without a usable onset is always rejected.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields

import pandas as pd

from mer.datasets import frames
from mer.datasets.tables import cell_text, parse_apex, parse_frame

CHOICES = {
    "offset_invalid": ("mirror", "reject"),
    "apex_missing": ("middle", "reject", "spot"),
    "apex_outside": ("middle", "reject", "spot"),
}
ERRATA_COLUMN = "_errata"  # table column naming the fields a published correction changed


@dataclass(frozen=True)
class Repair:
    """The repair rules (see the module docstring) and whether published errata apply."""

    offset_invalid: str = "mirror"
    apex_missing: str = "middle"
    apex_outside: str = "middle"
    errata: bool = True

    def __post_init__(self) -> None:
        for rule, choices in CHOICES.items():
            if getattr(self, rule) not in choices:
                raise ValueError(f"ingest.{rule} must be one of {choices}, got {getattr(self, rule)!r}")
        if self.apex_outside == "spot" and self.apex_missing != "spot":
            raise ValueError(
                "ingest.apex_outside: spot needs ingest.apex_repair: spot (which adds the stage that spots apexes)"
            )

    def spotted(self) -> tuple[str, ...]:
        """The rules whose rows stage apex@<data set> spots (ingest gave them the middle)."""
        return tuple(rule for rule in ("apex_missing", "apex_outside") if getattr(self, rule) == "spot")

    @classmethod
    def from_params(cls, options: Mapping[str, object]) -> Repair:
        """From the `ingest` block of params.yaml (`apex_repair` is the apex_missing rule)."""
        names = {f.name for f in fields(cls)} - {"apex_missing"}
        return cls(apex_missing=str(options["apex_repair"]), **{k: options[k] for k in names})  # type: ignore[arg-type]


DEFAULT_REPAIR = Repair()


@dataclass(frozen=True)
class KeyFrames:
    onset: int
    apex: int
    offset: int
    repairs: tuple[str, ...] = ()  # rule names applied, "erratum" first when a correction changed the row

    def select(
        self, available: Collection[int], margin: int, where: str, nearest: bool = False
    ) -> frames.FrameSelection:
        """The frames kept around these key frames (mer.datasets.frames.select); an offset the `offset_invalid`
        rule guessed past the last frame on disk becomes that last frame."""
        return frames.select(
            available,
            self.onset,
            self.apex,
            self.offset,
            margin,
            nearest=nearest,
            where=where,
            clamp_offset="offset_invalid" in self.repairs,
        )


def key_frames(
    onset_cell: object, apex_cell: object, offset_cell: object, repair: Repair = DEFAULT_REPAIR
) -> KeyFrames:
    """The row's key frames with the rules applied, or ValueError naming what is wrong."""
    onset = parse_frame(onset_cell, "onset")
    labelled = parse_apex(apex_cell)
    apex = labelled if isinstance(labelled, int) else None
    offset = parse_frame(offset_cell, "offset") if cell_text(offset_cell) else None
    repairs = []
    if offset is None or offset < onset:
        if repair.offset_invalid == "reject":
            raise ValueError(
                f"offset not labelled ({offset_cell!r})"
                if offset is None
                else f"offset frame {offset} is before onset frame {onset}"
            )
        offset = onset + 2 * max(0, (apex if apex is not None else onset) - onset)
        repairs.append("offset_invalid")
    if apex is None:
        if repair.apex_missing == "reject":
            raise ValueError(f"apex not labelled ({apex_cell!r})")
        apex = (onset + offset) // 2
        repairs.append("apex_missing")
    if not onset <= apex <= offset:
        if repair.apex_outside == "reject":
            raise ValueError(f"apex frame {apex} outside onset..offset {onset}..{offset}")
        apex = (onset + offset) // 2
        repairs.append("apex_outside")
    return KeyFrames(onset, apex, offset, tuple(repairs))


def row_key_frames(cells: pd.Series, cols: Mapping[str, str], repair: Repair = DEFAULT_REPAIR) -> KeyFrames:
    """`key_frames` of a label-table row whose onset/apex/offset columns are `cols["onset"]`, ...;
    "erratum" leads its repairs when a published correction changed the row."""
    keys = key_frames(cells[cols["onset"]], cells[cols["apex"]], cells[cols["offset"]], repair)
    if cell_text(cells.get(ERRATA_COLUMN)):
        return KeyFrames(keys.onset, keys.apex, keys.offset, ("erratum", *keys.repairs))
    return keys
