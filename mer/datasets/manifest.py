"""The ingest manifest: one CSV row per usable clip; the contract between ingest and preprocessing.

Columns: sample_id, subject, clip, label, label_index, emotion (raw), onset, apex, offset,
apex_repaired, source (label-table file and row), frame_numbers and frames (';'-joined, the
kept frame files in frame order), depth_frames (';'-joined, aligned with frames, or empty),
repairs (';'-joined: "erratum" and the repair rules of mer.datasets.keyframes applied, or empty);
a composite's manifest (mer.datasets.composite) adds `dataset`, the part each clip comes from.
Paths are as the data root was given in params (relative roots stay portable).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mer.datasets.protocols import Protocol
from mer.datasets.records import Clip
from mer.io import atomic_path

COLUMNS = [
    "sample_id",
    "subject",
    "clip",
    "label",
    "label_index",
    "emotion",
    "onset",
    "apex",
    "offset",
    "apex_repaired",
    "source",
    "frame_numbers",
    "frames",
    "depth_frames",
    "repairs",
]
SEP = ";"


def write(path: str | Path, clips: list[Clip], protocol: Protocol) -> None:
    rows = []
    for c in clips:
        label = protocol.label(c.emotion)
        if label is None:
            raise ValueError(
                f"{c.source}: clip {c.sample_id} has label {c.emotion!r}, outside protocol {protocol.name!r}"
            )
        rows.append(
            {
                "sample_id": c.sample_id,
                "subject": c.subject,
                "clip": c.clip,
                "label": label,
                "label_index": protocol.index(label),
                "emotion": c.emotion,
                "onset": c.onset,
                "apex": c.apex,
                "offset": c.offset,
                "apex_repaired": c.apex_repaired,
                "source": c.source,
                "frame_numbers": SEP.join(map(str, c.frame_numbers)),
                "frames": SEP.join(c.frames),
                "depth_frames": SEP.join(c.depth_frames) if c.depth_frames else "",
                "repairs": SEP.join(c.repairs),
            }
        )
    write_table(path, pd.DataFrame(rows, columns=COLUMNS))


def write_table(path: str | Path, table: pd.DataFrame) -> None:
    """Write a manifest already in its columns (a composite's joined parts), atomically."""
    with atomic_path(path, ".csv") as tmp:
        table.to_csv(tmp, index=False)


def read(path: str | Path) -> pd.DataFrame:
    """The manifest with list columns parsed back into Python lists."""
    table = pd.read_csv(
        path, dtype={"subject": str, "clip": str, "sample_id": str, "frame_numbers": str}, keep_default_na=False
    )
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: not an ingest manifest (missing columns {missing})")
    table["frame_numbers"] = table["frame_numbers"].map(lambda s: [int(v) for v in s.split(SEP)])
    table["frames"] = table["frames"].map(lambda s: s.split(SEP))
    table["depth_frames"] = table["depth_frames"].map(lambda s: s.split(SEP) if s else None)
    return table
