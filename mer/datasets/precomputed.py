"""Precomputed model inputs listed in a table: one image or .npy array per clip, no frames, no face stages.

For inputs computed elsewhere, such as the MEGC 2019 composite's published STSTNet flow images (u, v,
optical strain at 28x28, as HTNet's repository ships them) or a MEB/HTNet user's own .npy flows. Such a
data set skips landmarks, normalise and crop: the `precomputed` stage reads the files named here straight
into the training cache (mer.cache_store, `motion`), and a fold trains on them with input kind `precomputed`.

`dataset.table` (the reader's options) names the table's columns and the files:
- `subject`, `clip`, `label`: column names (the label is the raw label the protocol maps, e.g. 0/1/2);
- `part` (optional): a column naming the part of a composite (MEGC 2019: casme2/samm/smic); ids then
  follow mer.datasets.composite: subject `<part>_<subject>`, sample id `<part>/<subject>/<clip>`;
- `file`: a Python format string over the row's columns giving the file under `dataset.root`
  (HTNet: `'{sub}_{filename_o} .png'`, the space before `.png` as published), or a column name;
- `size` and `channels`: what every file must hold, (size, size, channels) for an image (channels last,
  8-bit, read as RGB) or (channels, size, size) / (size, size, channels) for a .npy array.
Each file is opened at ingest (a header read for a .npy), so a missing file, a wrong size or channel
count is a rejected row naming the row and file (`ingest.on_error: skip` drops it and reports it).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mer.datasets.keyframes import Repair
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import Clip, IngestError, ReadResult, Row, read_rows
from mer.datasets.subjects import fold_unit
from mer.datasets.tables import cell_text, column, load_table

SPEC = ReaderSpec(
    format="precomputed",
    folders="none: one file per row, under dataset.root",
    frames="dataset.table.file of each row",
    labels=frozenset(),  # no release vocabulary: a label the protocol does not map is rejected
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NEEDED = ("subject", "clip", "label", "file", "size", "channels")


def read(
    root: str | Path, labels: str | Path, repair: Repair | None = None, margin: int = 0, *, table: dict
) -> ReadResult:
    """Every row of the table at `labels` with its file under `root` checked; `repair`/`margin` do not apply."""
    root, labels = Path(root), Path(labels)
    missing = [key for key in NEEDED if key not in table]
    if missing:
        raise IngestError(f"format precomputed needs dataset.table.{', dataset.table.'.join(missing)}")
    rows = load_table(labels, header_hint=table["subject"])
    cols = {key: column(rows, labels, table[key]) for key in ("subject", "clip", "label")}
    if table.get("part"):
        cols["part"] = column(rows, labels, table["part"])
    name_of = _file_namer(rows, labels, table["file"])
    shape = int(table["size"]), int(table["channels"])

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        subject, clip = cell_text(cells[cols["subject"]]), cell_text(cells[cols["clip"]])
        if not subject or not clip:
            raise ValueError("subject or clip is empty")
        part = cell_text(cells[cols["part"]]) if "part" in cols else ""
        unit = fold_unit(part, subject) if part else subject
        row.sample_id = f"{part}/{subject}/{clip}" if part else f"{subject}/{clip}"
        result.subjects.add(unit)
        path = root / name_of(cells)
        check_file(path, *shape)
        result.counts[part or "clips"] += 1
        return Clip(
            subject=unit,
            clip=clip,
            onset=0,
            apex=0,
            offset=0,
            emotion=cell_text(cells[cols["label"]]).lower(),
            frames=[str(path)],
            frame_numbers=[0],
            source=row.source,
            sample_id=row.sample_id,
        )

    return read_rows(rows, labels, read_row)


def load_input(path: str | Path, size: int, channels: int) -> np.ndarray:
    """The file's input as float32 (channels, size, size): an 8-bit image in [0, 1], a .npy array as stored."""
    array = _read(Path(path))
    array = _channels_first(array, Path(path), size, channels)
    return array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)


def check_file(path: Path, size: int, channels: int) -> None:
    """Raise ValueError naming `path` unless it holds a (size, size, channels) input."""
    if not path.is_file():
        raise ValueError(f"file {path} not found")
    if path.suffix.lower() == ".npy":
        array = np.load(path, mmap_mode="r")  # the header only
    else:
        array = _read(path)
    _channels_first(array, path, size, channels)


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        return np.load(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"file {path}: not an image ({', '.join(IMAGE_SUFFIXES)}) or .npy array")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"file {path}: not a readable image")
    if image.dtype != np.uint8:
        raise ValueError(f"file {path}: {image.dtype} pixels, expected 8-bit")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return image if image.ndim == 3 else image[:, :, None]


def _channels_first(array: np.ndarray, path: Path, size: int, channels: int) -> np.ndarray:
    if array.shape == (channels, size, size):
        return np.asarray(array)
    if array.shape == (size, size, channels):
        return np.asarray(array).transpose(2, 0, 1)
    raise ValueError(
        f"file {path}: shape {tuple(array.shape)}, expected {size}x{size} with {channels} channel(s) "
        f"(dataset.table.size, dataset.table.channels)"
    )


def _file_namer(rows: pd.DataFrame, labels: Path, spec: str) -> Callable[[pd.Series], str]:
    """A function of a row giving its file name: `spec` formatted with the row's cells, or a column's value."""
    fields = [name for _, name, _, _ in string.Formatter().parse(spec) if name is not None]
    if not fields:
        name = column(rows, labels, spec)
        return lambda cells: cell_text(cells[name])
    names = {field: column(rows, labels, field) for field in fields}
    return lambda cells: spec.format(**{field: cell_text(cells[col]) for field, col in names.items()})
