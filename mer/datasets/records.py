"""What every reader returns: usable clips, rejected rows with their reasons, and counters."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
    apex_repaired: bool = False
    depth_frames: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.sample_id:
            self.sample_id = f"{self.subject}/{self.clip}"


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
