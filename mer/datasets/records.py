"""What every reader returns: usable clips, rejected rows with their reasons, and counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mer.datasets.frames import FrameSelection


class IngestError(Exception):
    """A fault in the raw data that stops ingestion; the message names the file, row or clip."""


@dataclass
class Clip:
    """One labelled micro-expression with its frames resolved to files.

    `frames` are the frame files kept for the clip (see `mer.datasets.frames`), sorted by
    frame number; `depth_frames` is aligned with `frames` for data sets with depth.
    """

    subject: str
    clip: str
    onset: int
    apex: int
    offset: int
    emotion: str
    frames: list[str]
    frame_numbers: list[int]
    source: str
    sample_id: str = ""
    repairs: tuple[str, ...] = ()  # published correction and repair rules applied (mer.datasets.keyframes)
    depth_frames: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.sample_id:
            self.sample_id = f"{self.subject}/{self.clip}"

    @property
    def apex_repaired(self) -> bool:
        return "apex_missing" in self.repairs


@dataclass
class Rejection:
    """A label-table row that did not become a clip, and why."""

    source: str
    reason: str
    sample_id: str = ""

    def __str__(self) -> str:
        where = f"{self.source} ({self.sample_id})" if self.sample_id else self.source
        return f"{where}: {self.reason}"


@dataclass
class ReadResult:
    clips: list[Clip] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    subjects: set[str] = field(default_factory=set)  # every subject named by a parsable row
    errata: list[dict] = field(default_factory=list)  # published corrections, applied or not (mer.datasets.errata)
    data_root: str = ""  # the folder the subject folders were found in (mer.datasets.folders.locate_root)
    vocabulary: frozenset[str] | None = None  # the release's emotion labels (the reader's LABELS), if known
    table_version: str = ""  # which release of the label table, when its reader tells them apart (casme2)


@dataclass
class Row:
    """One label-table row being read: its cells, where it is, and the clip id known so far.

    A reader sets `sample_id` as soon as it knows it, so a rejection names the clip when it can.
    """

    cells: pd.Series
    source: str
    sample_id: str = ""


def read_rows(
    table: pd.DataFrame,
    labels: Path,
    read_row: Callable[[Row, ReadResult], Clip],
    errata: list[dict] | None = None,
    data_root: Path | None = None,
) -> ReadResult:
    """Every row of `table` through `read_row`; a ValueError rejects that row with its message."""
    result = ReadResult(errata=errata or [], data_root="" if data_root is None else str(data_root))
    for _, cells in table.iterrows():
        row = Row(cells, f"{labels}:row {cells['_row']}")
        try:
            result.clips.append(read_row(row, result))
        except ValueError as exc:
            result.rejected.append(Rejection(row.source, str(exc), row.sample_id))
    return result


def selected_clip(
    row: Row,
    subject: str,
    clip: str,
    emotion: str,
    sel: FrameSelection,
    files: Mapping[int, object],
    repairs: tuple[str, ...],
    depth: Mapping[int, object] | None = None,
) -> Clip:
    """The clip of `row` keeping the selected frames of `files` (and of `depth`, aligned)."""
    return Clip(
        subject=subject,
        clip=clip,
        onset=sel.onset,
        apex=sel.apex,
        offset=sel.offset,
        emotion=emotion.lower(),
        frames=[str(files[n]) for n in sel.numbers],
        frame_numbers=sel.numbers,
        source=row.source,
        sample_id=row.sample_id,
        repairs=repairs,
        depth_frames=None if depth is None else [str(depth[n]) for n in sel.numbers],
    )
