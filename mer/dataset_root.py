"""The data set's location, checked before any row is read, with the param that holds it named.

A missing or empty `dataset.root` otherwise shows up as one "frame folder missing" per label
row and then "no usable clip", or as a bare `[Errno 2]`: both point away from the cause.
"""

from __future__ import annotations

from pathlib import Path

from mer.datasets.records import IngestError


def check(root: str | Path, labels: str | Path, holds: str = "frame folders") -> None:
    """Raise IngestError naming `dataset.root` / `dataset.labels` if the folder or the labels are not there.

    `holds`: what the root must contain, "frame folders" (raw clips) or "files" (precomputed inputs)."""
    root, labels = Path(root), Path(labels)
    fix = "set it in the dataset config (conf/dataset/*.yaml) or with `dvc exp run -S dataset.root=...`"
    if not root.exists():
        raise IngestError(f"dataset.root is {str(root)!r}: no such folder; {fix}")
    if not root.is_dir():
        raise IngestError(f"dataset.root is {str(root)!r}: a file, not a folder; {fix}")
    wanted = Path.is_dir if holds == "frame folders" else Path.is_file
    if not any(wanted(p) and not p.name.startswith(".") for p in root.iterdir()):
        raise IngestError(
            f"dataset.root is {str(root)!r}: the folder holds no {holds} (is the data set unpacked there?); {fix}"
        )
    if not labels.exists():  # a table, or a folder for data sets labelled by their folders (SMIC)
        raise IngestError(f"dataset.labels is {str(labels)!r}: no such file; {fix.replace('root', 'labels')}")
