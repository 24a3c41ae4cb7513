"""CAS(ME)^3 part A: sheet `label` of `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` +
`<Subject>/<Filename>/color/<n>.jpg` and `.../depth/<n>.png` (16-bit, registered to colour).

One video holds up to 17 micro-expressions, so a sample id is `<Subject>/<filename>/<onset>`
(labelled onset). The filename is lower-cased in ids and matched to folders case-insensitively
(the table has one `J` for folder `j`). Recordings drop frames in one modality or the other: a
clip keeps the frame numbers present in both, and a key frame without a pair steps to the
nearest paired frame, at most MAX_STEP away (counted in `counts["keyframe_moved"]`).

The pre-clipped release (`spNo.1_a_355/355.jpg`) is not supported: it does not show where its
depth frames live; point `root` at the full release's folder of `spNO.*` subjects.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mer.datasets import frames
from mer.datasets.coding import open_table
from mer.datasets.keyframes import DEFAULT_REPAIR, Repair, row_key_frames
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import Clip, ReadResult, Row, selected_clip
from mer.datasets.tables import cell_text

SPEC = ReaderSpec(
    format="casme3",
    folders="spNO.1 .. spNO.217, each <Filename>/color and /depth",
    frames="color/<n>.jpg and depth/<n>.png",
    labels=frozenset({"happy", "disgust", "fear", "anger", "sad", "surprise", "others"}),
    columns={
        "subject": ("Subject",),
        "clip": ("Filename",),
        "onset": ("Onset", "OnsetFrame"),
        "apex": ("Apex", "ApexFrame"),
        "offset": ("Offset", "OffsetFrame"),
        "emotion": ("emotion", "Estimated Emotion"),
    },
    sheets=("label",),
)
COLOR_PATTERN = re.compile(r"(\d+)\.jpg", re.IGNORECASE)
DEPTH_PATTERN = re.compile(r"(\d+)\.png", re.IGNORECASE)
MAX_STEP = 5  # frames (1/6 s at 30 fps); farther means the row points past the recording


def video_folder(root: Path, subject: str, clip: str) -> Path:
    """`root/subject/clip`, each name matched case-insensitively when the exact one is absent."""
    frames.inside(root, subject, clip)  # refuse names escaping the root before looking anything up
    folder = root
    for name in (subject, clip):
        folder = _child(folder, name)
    return folder


def read(root: str | Path, labels: str | Path, repair: Repair = DEFAULT_REPAIR, margin: int = 4) -> ReadResult:
    """Read sheet `label` of the table at `labels` and resolve every row's frames under `root`."""
    coding = open_table(SPEC, root, labels, repair)
    cols, root = coding.cols, coding.root

    def read_row(row: Row, result: ReadResult) -> Clip:
        cells = row.cells
        subject, clip_name = cell_text(cells[cols["subject"]]), cell_text(cells[cols["clip"]]).lower()
        row.sample_id = f"{subject}/{clip_name}"
        if not subject or not clip_name:
            raise ValueError("subject or filename is empty")
        result.subjects.add(subject)
        keys = row_key_frames(cells, cols, repair)
        row.sample_id = f"{subject}/{clip_name}/{keys.onset}"
        folder = video_folder(root, subject, clip_name)
        color = frames.list_frames(folder / "color", COLOR_PATTERN)
        depth = frames.list_frames(folder / "depth", DEPTH_PATTERN)
        sel = keys.select(color.keys() & depth.keys(), margin, where=f"{folder} (colour and depth)", nearest=True)
        labelled = (keys.onset, keys.apex, sel.offset if "offset_invalid" in keys.repairs else keys.offset)
        result.counts["keyframe_moved"] += _moved(labelled, sel)
        result.counts["unpaired_frame"] += _unpaired(color.keys() ^ depth.keys(), sel, margin)
        emotion = cell_text(cells[cols["emotion"]])
        return selected_clip(row, subject, clip_name, emotion, sel, color, keys.repairs, depth)

    return coding.read(read_row)


def _child(parent: Path, name: str) -> Path:
    exact = parent / name
    if exact.is_dir() or not parent.is_dir():
        return exact
    with os.scandir(parent) as entries:
        matches = sorted(e.name for e in entries if e.is_dir() and e.name.lower() == name.lower())
    if len(matches) > 1:
        raise ValueError(f"folders {matches} in {parent} differ only in case")
    return parent / matches[0] if matches else exact


def _moved(labelled: tuple[int, int, int], sel: frames.FrameSelection) -> int:
    """How many key frames stepped to a paired neighbour; refuses steps beyond MAX_STEP."""
    moved = 0
    for name, want, got in zip(("onset", "apex", "offset"), labelled, (sel.onset, sel.apex, sel.offset), strict=True):
        if abs(got - want) > MAX_STEP:
            raise ValueError(
                f"{name} frame {want} has no colour+depth pair within {MAX_STEP} frames (nearest is {got})"
            )
        moved += got != want
    return moved


def _unpaired(one_modality: set[int], sel: frames.FrameSelection, margin: int) -> int:
    """Frames of the clip's span left out because only one modality has them."""
    return sum(sel.onset - margin <= n <= sel.offset + margin for n in one_modality)
