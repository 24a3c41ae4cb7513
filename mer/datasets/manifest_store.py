"""data/manifest.csv, the file `ingest` hands to `landmarks`, `crop`, `cache` and `precomputed`: one CSV row per
usable clip. Written by stages/ingest.py (`ingest`, and `ingest_part@<part>` for a composite's parts, which
mer.datasets.composite joins); `table` builds it from the read clips, `write` writes it, `read` reads it back.
With `ingest.apex_repair: spot`, stages/apex.py (`apex@<data set>`) writes a copy, data/manifest_apex.csv, whose
`apex` holds the spotted apex on the rows ingest repaired under a `spot` rule (mer/spotting/apex.py): crop and
cache read that one then.

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
LIST_COLUMNS = ("frame_numbers", "frames", "depth_frames")  # ';'-joined in the file, lists once read


def table(clips: list[Clip], protocol: Protocol) -> pd.DataFrame:
    """The manifest of `clips`, labelled by `protocol` (a label outside it is an error naming the clip)."""
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
    return pd.DataFrame(rows, columns=COLUMNS)


def write(path: str | Path, manifest: pd.DataFrame) -> None:
    """Write a manifest in its columns (from `table`, a composite's joined parts, or `read` and changed: its list
    columns are joined again), atomically."""
    joined = manifest.copy()
    for column in LIST_COLUMNS:
        joined[column] = joined[column].map(_joined)
    with atomic_path(path, ".csv") as tmp:
        joined.to_csv(tmp, index=False)


def _joined(cell: object) -> object:
    if cell is None:
        return ""
    return SEP.join(map(str, cell)) if isinstance(cell, list) else cell


def read(path: str | Path) -> pd.DataFrame:
    """The manifest with list columns parsed back into Python lists."""
    manifest = pd.read_csv(
        path, dtype={"subject": str, "clip": str, "sample_id": str, "frame_numbers": str}, keep_default_na=False
    )
    missing = [c for c in COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"{path}: not an ingest manifest (missing columns {missing})")
    manifest["frame_numbers"] = manifest["frame_numbers"].map(lambda s: [int(v) for v in s.split(SEP)])
    manifest["frames"] = manifest["frames"].map(lambda s: s.split(SEP))
    manifest["depth_frames"] = manifest["depth_frames"].map(lambda s: s.split(SEP) if s else None)
    return manifest
