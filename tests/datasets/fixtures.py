"""Tiny on-disk copies of each data set's layout, with every known fault switchable.

Each builder takes a tmp_path and the names of the faults to plant, and returns a Layout:
the data root, the label table, and the 1-based table row of every labelled clip (keyed by
its expected sample id, or by the fault's name for a planted row), so tests can assert
exact sources. Frames are 8x8 images: `.jpg` grey-scale, `.png` 16-bit (depth).

Faults every builder takes (COMMON):
  apex_missing          the second clip's apex holds the data set's "no apex" marker
  offset_before_onset   an extra row whose offset (0) is before its onset: repaired by default (offset
                        54, the apex mirrored), rejected with offset_invalid: reject
  missing_frame         the first clip's apex frame file is deleted (all modalities)
  escaping_filename     an extra row whose clip folder is `../x` (frames exist there)
  duplicate             the first clip's row appears twice
  subject_without_clip  an extra subject whose only row has no frames
  missing_column        the apex column is left out
  corrupt               the label table cannot be parsed (a damaged xlsx; for CSV, an open quote)
  text_numbers          subject and frame numbers are stored as text
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import openpyxl

from mer.datasets import megc2019
from mer.datasets.records import ReadResult, Rejection

COMMON = frozenset(
    {
        "apex_missing",
        "offset_before_onset",
        "missing_frame",
        "escaping_filename",
        "duplicate",
        "subject_without_clip",
        "missing_column",
        "corrupt",
        "text_numbers",
    }
)
SPAN = 6  # frames written on each side of onset..offset
# the planted offset_before_onset row, with offset_invalid: reject
OFFSET_REJECTED = "offset frame 0 is before onset frame 50"
ROW_FAULT_REASONS = {  # planted row -> what its rejection must say
    "escaping_filename": "escapes the data root",
    "subject_without_clip": "frame folder missing",
}
JPEG = cv2.imencode(".jpg", np.full((8, 8), 128, np.uint8))[1].tobytes()
DEPTH_PNG = cv2.imencode(".png", np.full((8, 8), 1000, np.uint16))[1].tobytes()


@dataclass
class Layout:
    root: Path
    labels: Path
    rows: dict[str, int]

    @property
    def paths(self) -> tuple[Path, Path]:
        """(root, labels): a reader's first two arguments."""
        return self.root, self.labels


@dataclass
class Row:
    """One labelled clip as a table holds it."""

    key: str
    subject: object
    clip: str
    onset: int | str
    apex: object
    offset: int | str
    emotion: str
    frames: bool = True  # write its frame files


FrameFiles = Callable[[Row, int], list[Path]]


# ---------------------------------------------------------------- CASME II

CASME2_AUS = ["4+L10", "R12", "1+2+4", 4, "4+7"]  # Action Units cells as the tables hold them


def casme2(tmp_path: Path, faults: Iterable[str] = ()) -> Layout:
    """`CASME2-coding-20140508.xlsx` (two blank-header columns) + `subNN/<Filename>/img<n>.jpg`.

    Extra fault `coding_2019`: the 20190701 table instead, with its `Objective Classes` column.
    """
    faults = _known(faults, COMMON | {"coding_2019"})
    rows = _plant(
        [
            Row("sub01/EP02_01f", 1, "EP02_01f", 10, 13, 16, "happiness"),
            Row("sub01/EP03_02", 1, "EP03_02", 20, 22, 28, "disgust"),
            Row("sub02/EP01_11f", 2, "EP01_11f", 5, 8, 11, "surprise"),
            Row("sub02/EP05_03", 2, "EP05_03", 30, 33, 36, "fear"),
            Row("sub10/EP07_01", 10, "EP07_01", 40, 42, 45, "repression"),
        ],
        faults,
        apex_marker="/",
        new_subject=7,
    )
    return _casme2_release_layout(tmp_path, rows, faults)


def _casme2_release_layout(tmp_path: Path, rows: list[Row], faults: frozenset[str]) -> Layout:
    """CASME II's frames and coding table (2014's, or with `coding_2019` the 2019 table) holding `rows`."""
    root = tmp_path / "CASME2_RAW_selected"
    _write_frames(rows, faults, lambda r, n: [root / f"sub{r.subject:02d}" / r.clip / f"img{n}.jpg"])
    header = [
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated Emotion",
    ]
    cells = [
        [r.subject, r.clip, 0, r.onset, r.apex, r.offset, None, CASME2_AUS[i % len(CASME2_AUS)], r.emotion]
        for i, r in enumerate(rows)
    ]
    labels = tmp_path / "CASME2-coding-20140508.xlsx"
    if "coding_2019" in faults:
        header = header[:8] + ["Objective Classes"] + header[8:]
        cells = [c[:8] + [i % 7 + 1] + c[8:] for i, c in enumerate(cells)]
        labels = tmp_path / "CASME2-coding-20190701.xlsx"
    first = _write_xlsx(labels, *_columns(header, cells, faults, "ApexFrame"), faults)
    return Layout(root, labels, _row_numbers(rows, first))


# ---------------------------------------------------------------- SAMM

SAMM_COLUMNS = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Type",
    "Objective Classes",
    "Notes",
    "Action Units",
    "Estimated Emotion",
]
SAMM_NOTES = 12  # note lines; with a blank line after them the header is Excel row 14, as in the release


def samm(tmp_path: Path, faults: Iterable[str] = ()) -> Layout:
    """`SAMM_Micro_FACS_Codes_v2.xlsx` + `NNN/<Filename>/NNN_nnnnn.jpg`.

    Extra faults: `notes_block` (free-text notes above the header), `reordered_columns`.
    Subject 20's only clip is `Fear`, outside the 5-class protocol.
    """
    faults = _known(faults, COMMON | {"notes_block", "reordered_columns"})
    rows = _plant(
        [
            Row("006/006_1_2", 6, "006_1_2", 5562, 5565, 5570, "Happiness"),
            Row("006/006_1_3", 6, "006_1_3", 1000, 1002, 1008, "Anger"),
            Row("007/007_3_1", 7, "007_3_1", 200, 203, 206, "Contempt"),
            Row("011/011_2_1", 11, "011_2_1", 300, 302, 305, "Surprise"),
            Row("011/011_2_2", 11, "011_2_2", 400, 404, 409, "Other"),
            Row("020/020_1_1", 20, "020_1_1", 90, 92, 95, "Fear"),
        ],
        faults,
        apex_marker=-1,
        new_subject=33,
    )
    root = tmp_path / "SAMM"
    _write_frames(rows, faults, lambda r, n: [root / f"{r.subject:03d}" / r.clip / f"{r.subject:03d}_{n:05d}.jpg"])
    values = {name: None for name in SAMM_COLUMNS}
    cells = []
    for r in rows:
        values.update(
            {
                "Subject": r.subject,
                "Filename": r.clip,
                "Inducement Code": 1,
                "Onset Frame": r.onset,
                "Apex Frame": r.apex,
                "Offset Frame": r.offset,
                "Duration": 9,
                "Type": "Micro - 1/2",
                "Objective Classes": 1,
                "Action Units": "R12",
                "Estimated Emotion": r.emotion,
            }
        )
        cells.append(list(values.values()))
    header = list(SAMM_COLUMNS)
    if "reordered_columns" in faults:
        order = [header.index(name) for name in reversed(SAMM_COLUMNS)]
        header, cells = [header[i] for i in order], [[c[i] for i in order] for c in cells]
    notes = [f"Note {i}: free text about the coding, e.g. Subject numbering." for i in range(1, SAMM_NOTES + 1)]
    labels = tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"
    first = _write_xlsx(
        labels,
        *_columns(header, cells, faults, "Apex Frame"),
        faults,
        notes=notes + [None] if "notes_block" in faults else (),
    )
    return Layout(root, labels, _row_numbers(rows, first))


# ---------------------------------------------------------------- MMEW


def mmew(tmp_path: Path, faults: Iterable[str] = ()) -> Layout:
    """`MMEW_Micro_Exp.xlsx` + `Micro_Expression/<emotion>/<Filename>/<n>.jpg`, n from 1.

    Extra faults: `numeric_subjects` (Subject cells 1, 2, 10 instead of S01, S02, S10),
    `capitalised_folders` (emotion folders `Happiness`, ... while the table says `happiness`).
    Subject S10's only clip is `fear`, outside the 4-class protocol.
    """
    faults = _known(faults, COMMON | {"numeric_subjects", "capitalised_folders"})
    rows = _plant(
        [
            Row("S01/S01-07-001", "S01", "S01-07-001", 2, 5, 9, "happiness"),
            Row("S01/S01-07-002", "S01", "S01-07-002", 3, 6, 8, "disgust"),
            Row("S02/S02-01-001", "S02", "S02-01-001", 4, 7, 10, "surprise"),
            Row("S02/S02-03-004", "S02", "S02-03-004", 2, 4, 6, "others"),
            Row("S10/S10-02-001", "S10", "S10-02-001", 5, 8, 12, "fear"),
        ],
        faults,
        apex_marker="/",
        new_subject="S07",
    )
    root = tmp_path / "MMEW" / "Micro_Expression"

    def folder(emotion: str) -> str:
        return emotion.capitalize() if "capitalised_folders" in faults else emotion

    _write_frames(rows, faults, lambda r, n: [root / folder(r.emotion) / r.clip / f"{n}.jpg"])
    if "numeric_subjects" in faults:
        rows = [replace(r, subject=int(r.subject[1:])) for r in rows]
    header = [
        "Subject",
        "Filename",
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        "Action Units",
        "Estimated Emotion",
        "remarks",
    ]
    cells = [[r.subject, r.clip, r.onset, r.apex, r.offset, "AU12", r.emotion, None] for r in rows]
    labels = tmp_path / "MMEW" / "MMEW_Micro_Exp.xlsx"
    first = _write_xlsx(labels, *_columns(header, cells, faults, "ApexFrame"), faults)
    return Layout(root, labels, _row_numbers(rows, first))


# ---------------------------------------------------------------- CAS(ME)^3 part A

CASME3_TABLE = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"


def casme3(tmp_path: Path, faults: Iterable[str] = ()) -> Layout:
    """Sheet `label` (not the first sheet) + `<Subject>/<Filename>/color/<n>.jpg`, `depth/<n>.png`.

    Video spNO.1/a holds two micro-expressions; spNO.2/b has onset == apex. `missing_frame`
    drops both modalities of spNO.1/a/355's apex. Extra faults: `dropped_depth` (no depth for
    spNO.1/a/380's apex 383), `dropped_color` (no colour for spNO.2/b's onset 166 nor for 170),
    `long_gap` (no colour for frames 28..40 of spNO.10/j), `upper_case_filename` (the table says
    `J` for folder `j`), `capitalised_others` (`Others` for spNO.1/a/355), `released_layout` (the
    subjects one level deeper, in `part_A/data/part_A/`, as the release unpacks), `split_layout`
    (`part_A_split/part_A/<subject>`; the layout's root is then `part_A_split`).
    """
    faults = _known(
        faults,
        COMMON
        | {
            "dropped_depth",
            "dropped_color",
            "long_gap",
            "upper_case_filename",
            "capitalised_others",
            "released_layout",
            "split_layout",
        },
    )
    rows = _plant(
        [
            Row("spNO.1/a/355", "spNO.1", "a", 355, 359, 360, "others"),
            Row("spNO.1/a/380", "spNO.1", "a", 380, 383, 390, "happy"),
            Row("spNO.2/b/166", "spNO.2", "b", 166, 166, 175, "disgust"),
            Row("spNO.10/j/28", "spNO.10", "j", 28, 33, 40, "surprise"),
            Row("spNO.10/k/50", "spNO.10", "k", 50, 52, 55, "anger"),
        ],
        faults,
        apex_marker="/",
        new_subject="spNO.7",
    )
    root = tmp_path / "part_A_split" if "split_layout" in faults else tmp_path / "part_A" / "data"
    subjects = root / "part_A" if faults & {"released_layout", "split_layout"} else root

    def files(r: Row, n: int) -> list[Path]:
        video = subjects / r.subject / r.clip
        return [video / "color" / f"{n}.jpg", video / "depth" / f"{n}.png"]

    _write_frames(rows, faults, files)
    drops = {
        "dropped_depth": [files(rows[1], 383)[1]],
        "dropped_color": [files(rows[2], 166)[0], files(rows[2], 170)[0]],
        "long_gap": [files(rows[3], n)[0] for n in range(28, 41)],
    }
    for fault, paths in drops.items():
        if fault in faults:
            for path in paths:
                path.unlink()
    if "upper_case_filename" in faults:
        rows[3].clip = "J"
    if "capitalised_others" in faults:
        rows[0].emotion = "Others"
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    cells = [[r.subject, r.clip, r.onset, r.apex, r.offset, "4", "III", r.emotion] for r in rows]
    labels = tmp_path / CASME3_TABLE
    first = _write_xlsx(labels, *_columns(header, cells, faults, "Apex"), faults, sheet="label")
    return Layout(root, labels, _row_numbers(rows, first))


# ---------------------------------------------------------------- generic CSV


def generic(tmp_path: Path, faults: Iterable[str] = ()) -> Layout:
    """A clip manifest CSV: one layout per row (plain `img{}.jpg`; a folder and pattern full of
    regex metacharacters; `{:03d}.png` with a depth folder `d{:03d}.png`).

    Extra faults: `bad_pattern` (an extra row whose pattern has two fields), `dropped_depth`
    (no depth for s10/c3's apex). `escaping_filename` here is a frames_dir of `../x`.
    """
    faults = _known(faults, COMMON | {"bad_pattern", "dropped_depth"})
    rows = _plant(
        [
            Row("s1/c1", "s1", "c1", 1, 3, 5, "happy"),
            Row("s2/c2", "s2", "c2", 10, 11, 15, "sad"),
            Row("s10/c3", "s10", "c3", 7, 9, 11, "happy"),
        ],
        faults,
        apex_marker="/",
        new_subject="s7",
    )
    if "bad_pattern" in faults:
        rows.append(Row("bad_pattern", "s1", "c9", 1, 3, 5, "happy", frames=False))
    places = {
        "s2/c2": ("videos/s2 (take+1)/c2", "frame[{:05d}].jpg", "", ""),
        "s10/c3": ("s10/c3", "{:03d}.png", "s10/c3_depth", "d{:03d}.png"),
        "bad_pattern": ("s1/c1", "img{}{}.jpg", "", ""),
        "escaping_filename": ("../x", "img{}.jpg", "", ""),
    }

    def place(r: Row) -> tuple[str, str, str, str]:
        return places.get(r.key, (f"{r.subject}/{r.clip}", "img{}.jpg", "", ""))

    root = tmp_path / "data"

    def files(r: Row, n: int) -> list[Path]:
        frames_dir, pattern, depth_dir, depth_pattern = place(r)
        paths = [root / frames_dir / pattern.format(n)]
        return paths + [root / depth_dir / depth_pattern.format(n)] if depth_dir else paths

    _write_frames(rows, faults, files)
    if "dropped_depth" in faults:
        files(rows[2], 9)[1].unlink()
    header = [
        "subject",
        "clip",
        "onset",
        "apex",
        "offset",
        "label",
        "frames_dir",
        "frame_pattern",
        "depth_dir",
        "depth_pattern",
    ]
    cells = [[r.subject, r.clip, r.onset, r.apex, r.offset, r.emotion, *place(r)] for r in rows]
    header, cells = _columns(header, cells, faults, "apex")
    labels = tmp_path / "clips.csv"
    if "corrupt" in faults:
        labels.write_bytes(b'"unterminated quote,\x00\n')
    else:
        with labels.open("w", newline="") as f:
            csv.writer(f).writerows([header, *cells])
    return Layout(root, labels, _row_numbers(rows, 2))


# ---------------------------------------------------------------- shared pieces


def rejection_for(result: ReadResult, layout: Layout, key: str) -> Rejection:
    """The one rejection whose source is the table row planted under `key`."""
    source = f"{layout.labels}:row {layout.rows[key]}"
    found = [r for r in result.rejected if r.source == source]
    assert len(found) == 1, f"expected one rejection at {source}, got {[str(r) for r in result.rejected]}"
    return found[0]


def _known(faults: Iterable[str], known: frozenset[str]) -> frozenset[str]:
    faults = frozenset(faults)
    if faults - known:
        raise ValueError(f"unknown faults {sorted(faults - known)}; this layout knows {sorted(known)}")
    return faults


def _plant(rows: list[Row], faults: frozenset[str], apex_marker: object, new_subject: object) -> list[Row]:
    """The base rows with the common row faults applied (extra rows go at the end)."""
    first = rows[0]
    if "apex_missing" in faults:
        rows[1] = replace(rows[1], apex=apex_marker)
    if "offset_before_onset" in faults:
        rows.append(Row("offset_before_onset", first.subject, "bad_offset", 50, 52, 0, first.emotion))
    if "escaping_filename" in faults:
        rows.append(
            Row("escaping_filename", first.subject, "../x", first.onset, first.apex, first.offset, first.emotion)
        )
    if "duplicate" in faults:
        rows.append(replace(first, key="duplicate"))
    if "subject_without_clip" in faults:
        rows.append(Row("subject_without_clip", new_subject, "no_frames", 10, 13, 16, first.emotion, frames=False))
    if "text_numbers" in faults:
        rows = [replace(r, **{k: str(getattr(r, k)) for k in ("subject", "onset", "apex", "offset")}) for r in rows]
    return rows


def _write_frames(rows: list[Row], faults: frozenset[str], files: FrameFiles) -> None:
    for r in rows:
        if r.frames:
            for n in range(max(1, int(r.onset) - SPAN), max(int(r.onset), int(r.offset)) + SPAN + 1):
                for path in files(_numeric(r), n):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(DEPTH_PNG if path.suffix == ".png" else JPEG)
    if "missing_frame" in faults:
        for path in files(_numeric(rows[0]), int(rows[0].apex)):
            path.unlink()


def _numeric(r: Row) -> Row:
    """The row with a text subject number turned back into a number, for naming files."""
    return replace(r, subject=int(r.subject)) if isinstance(r.subject, str) and r.subject.isdigit() else r


def _columns(header: list, cells: list[list], faults: frozenset[str], apex: str) -> tuple[list, list[list]]:
    if "missing_column" not in faults:
        return header, cells
    i = header.index(apex)
    return header[:i] + header[i + 1 :], [c[:i] + c[i + 1 :] for c in cells]


def _write_xlsx(
    path: Path, header: list, cells: list[list], faults: frozenset[str], notes: Iterable = (), sheet: str | None = None
) -> int:
    """Write the table (after `notes`, one per row); the 1-based row of the first data row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if "corrupt" in faults:
        path.write_bytes(b"PK\x03\x04 truncated: not a workbook")
        return 0
    book = openpyxl.Workbook()
    ws = book.active
    if sheet is not None:
        ws.append(["a first sheet that is not the label table"])
        ws = book.create_sheet(sheet)
    notes = list(notes)
    for note in notes:
        ws.append([note])
    ws.append(header)  # None cells stay blank: openpyxl writes no cell for them
    for row in cells:
        ws.append(row)
    book.save(path)
    return len(notes) + 2


def _row_numbers(rows: list[Row], first: int) -> dict[str, int]:
    return {r.key: first + i for i, r in enumerate(rows)}


# ---------------------------------------------------------------- SAMM v2 as released

SAMM_SUBJECTS_5CLASS = [
    "006",
    "007",
    *(f"{s:03d}" for s in range(9, 24)),
    "025",
    "026",
    "028",
    *(f"{s:03d}" for s in range(30, 36)),
    "037",
]
SAMM_5CLASS_COUNTS = {"Anger": 57, "Contempt": 12, "Happiness": 26, "Surprise": 15, "Other": 26}  # 136 clips
SAMM_OTHER_COUNTS = {"Disgust": 9, "Fear": 8, "Sadness": 6}  # the 23 rows outside the 5 classes
SAMM_BAD_KEYS = {"028_4_1": (1071, 1143, 1134), "032_3_1": (4896, 1930, 4970)}  # apex after offset / before onset


def samm_release(tmp_path: Path) -> Layout:
    """The v2 table's facts: sheet MICRO_ONLY with its header on row 14, 159 rows over 29 subjects
    (006..037 without 008, 027, 029), 136 of them in the 5 classes from 27 subjects (024 and 036
    have none), and the two rows with inconsistent key frames. Which subject holds which emotion
    is not the release's (only the totals are); every other row is consistent."""
    five = [e for e, n in SAMM_5CLASS_COUNTS.items() for _ in range(n)]
    rest = [e for e, n in SAMM_OTHER_COUNTS.items() for _ in range(n)]
    owners = [SAMM_SUBJECTS_5CLASS[i % 27] for i in range(len(five))]
    owners += ["024", "024", "036"] + [SAMM_SUBJECTS_5CLASS[i % 27] for i in range(len(rest) - 3)]
    rows, taken = [], Counter()
    for subject, emotion in sorted(zip(owners, five + rest, strict=True)):
        taken[subject] += 1
        clip = f"{subject}_{taken[subject]}_1"
        onset = 100 * taken[subject]
        onset, apex, offset = SAMM_BAD_KEYS.get(clip, (onset, onset + 5, onset + 12))
        rows.append(Row(f"{subject}/{clip}", int(subject), clip, onset, apex, offset, emotion))
    for clip in SAMM_BAD_KEYS:  # the faulty rows must exist under their real names
        assert any(r.clip == clip for r in rows), clip
    return _samm_release_layout(tmp_path, rows)


def _samm_release_layout(tmp_path: Path, rows: list[Row]) -> Layout:
    """SAMM's frames and v2 table (sheet MICRO_ONLY, the notes above the header on row 14) holding `rows`."""
    root = tmp_path / "SAMM"
    _write_frames(rows, frozenset(), lambda r, n: [root / f"{r.subject:03d}" / r.clip / f"{r.subject:03d}_{n:05d}.jpg"])
    cells = [
        [
            r.subject,
            r.clip,
            1,
            r.onset,
            r.apex,
            r.offset,
            r.offset - r.onset + 1,
            "Micro - 1/2",
            1,
            None,
            "4+L10",
            r.emotion,
        ]
        for r in rows
    ]
    notes = [f"Note {i}: free text about the coding." for i in range(1, SAMM_NOTES + 1)]
    labels = tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx"
    first = _write_xlsx(labels, SAMM_COLUMNS, cells, frozenset(), notes=notes + [None], sheet="MICRO_ONLY")
    return Layout(root, labels, _row_numbers(rows, first))


# ---------------------------------------------------------------- SMIC HS

SMIC_SUBJECTS = ["s1", "s2", "s3", "s4", "s5", "s6", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s18", "s19", "s20"]
SMIC_COUNTS = {"positive": 51, "negative": 70, "surprise": 43}  # 164 clips
SMIC_SHORT = {"positive": "po", "negative": "ne", "surprise": "sur"}


def smic(tmp_path: Path, faults: Iterable[str] = ()) -> Layout:
    """`SMIC_all_raw/HS/<subject>/micro/<emotion>/<clip>/image<n>.bmp` under the layout's root (the
    release's nesting: the reader searches below the root): 164 clips of 16 subjects, 10 to 16
    frames each, numbered from 1000 * clip index. `rows` maps each sample id to its first frame.

    Faults: `empty_clip` (s1's first clip folder holds no frame), `jpg_frames` (frames named
    `<n>.jpg` instead of `image<n>.bmp`).
    """
    faults = _known(faults, frozenset({"empty_clip", "jpg_frames"}))
    root = tmp_path / "SMIC"
    hs = root / "SMIC_all_raw" / "HS"
    emotions = [e for e, n in SMIC_COUNTS.items() for _ in range(n)]
    first: dict[str, int] = {}
    taken: Counter = Counter()
    for i, emotion in enumerate(emotions):
        subject = SMIC_SUBJECTS[i % len(SMIC_SUBJECTS)]
        taken[subject, emotion] += 1
        clip = f"{subject}_{SMIC_SHORT[emotion]}_{taken[subject, emotion]:02d}"
        folder = hs / subject / "micro" / emotion / clip
        folder.mkdir(parents=True)
        start = 1000 * (i + 1)
        first[f"{subject}/{clip}"] = start
        if "empty_clip" in faults and i == 0:
            continue
        for n in range(start, start + 10 + i % 7):
            (folder / (f"{n}.jpg" if "jpg_frames" in faults else f"image{n:06d}.bmp")).write_bytes(JPEG)
    return Layout(root, root, first)


# HTNet's published MEGC 2019 flow images: combined_3_class2_for_optical_flow.csv + <sub>_<filename_o> .png
HTNET_COLUMNS = ["dataset", "sub", "filename_o", "label", "apex", "imagename", "sub_filename"]
HTNET_TABLE = {
    "subject": "sub",
    "clip": "filename_o",
    "label": "label",
    "part": "dataset",
    "file": "{sub}_{filename_o} .png",
    "size": 28,
    "channels": 3,
}


def htnet_flow(
    tmp_path: Path, clips_per_subject: int = 4, faults: Iterable[str] = (), subjects_per_part: int = 2
) -> Layout:
    """MEGC 2019's published STSTNet inputs in HTNet's layout: `subjects_per_part` (1 or 2) subjects per
    part, `clips_per_subject` clips each, labels cycling 0, 1, 2 (plus a class signal in the images:
    channel `label` is bright).

    Faults: missing_file (the first row's image deleted), wrong_size (27x28), grey (one channel),
    unknown_label (a row labelled 3), duplicate (the first row twice)."""
    root, table = tmp_path / "STSNet_whole_norm_u_v_os", tmp_path / "combined_3_class2_for_optical_flow.csv"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    every = {"casme2": ["sub01", "sub02"], "samm": ["006", "007"], "smic": ["s01", "s02"]}
    subjects = {part: subs[:subjects_per_part] for part, subs in every.items()}
    rows, ids = [], {}
    for part, subs in subjects.items():
        for sub in subs:
            for n in range(clips_per_subject):
                clip = {"casme2": f"EP0{n}_01f", "samm": f"{sub}_{n}_{n + 1}", "smic": f"{sub}_ne_0{n}"}[part]
                label = n % 3
                rows.append([part, sub, clip, label, "", f"{sub}_{clip}.jpg", ""])
                ids[f"{part}/{sub}/{clip}"] = len(rows) + 1  # 1-based file row: the header is row 1
                image = rng.integers(0, 60, (28, 28, 3), dtype=np.uint8)
                image[:, :, label] += 150
                cv2.imwrite(str(root / f"{sub}_{clip} .png"), image[:, :, ::-1])  # RGB as written by cv2 (BGR)
    first = root / f"{rows[0][1]}_{rows[0][2]} .png"
    faults = set(faults)
    if "missing_file" in faults:
        first.unlink()
    if "wrong_size" in faults:
        cv2.imwrite(str(root / f"{rows[1][1]}_{rows[1][2]} .png"), np.zeros((27, 28, 3), np.uint8))
    if "grey" in faults:
        cv2.imwrite(str(root / f"{rows[2][1]}_{rows[2][2]} .png"), np.zeros((28, 28), np.uint8))
    if "unknown_label" in faults:
        rows[3][3] = 3
    if "duplicate" in faults:
        rows.append(list(rows[0]))
        ids["duplicate"] = len(rows) + 1
    with table.open("w", newline="") as f:
        csv.writer(f).writerows([HTNET_COLUMNS, *rows])
    return Layout(root, table, ids)


# ---------------------------------------------------------------- MEGC 2019 as published, from the raw tables

MEGC2019_CLASSES = ("negative", "positive", "surprise")  # the list's label indices 0, 1, 2
MEGC2019_COUNTS = {  # per part and class, as published (See et al. 2019; the list's own counts)
    "casme2": {"negative": 88, "positive": 32, "surprise": 25},
    "samm": {"negative": 92, "positive": 26, "surprise": 15},
    "smic": {"negative": 70, "positive": 51, "surprise": 43},
}
# CASME II clips in the 3 classes that the published list leaves out: disgust in both tables, and sub24's
# three clips that only the 2019 table codes as surprise (in the 2014 table they fall outside the classes)
CASME2_UNLISTED = {"sub04/EP12_01f": "disgust", "sub05/EP09_05f": "disgust"}
CASME2_SURPRISE_2019 = ["sub24/EP07_01", "sub24/EP07_04f", "sub24/EP10_03"]
CASME2_NEGATIVE = ["disgust", "disgust", "repression"]  # cycled over the listed negative clips
SAMM_NEGATIVE = {"Anger": 57, "Contempt": 12, "Disgust": 9, "Fear": 8, "Sadness": 6}  # SAMM v2's 92


def megc2019_listed() -> list[tuple[str, str, str, str]]:
    """The published list's rows: (part, sub, filename_o, class name)."""
    rows = csv.DictReader(io.StringIO(megc2019.CSV))
    return [(r["dataset"], r["sub"], r["filename_o"], MEGC2019_CLASSES[int(r["label"])]) for r in rows]


def megc2019_release(tmp_path: Path, casme2_table: str = "2014") -> dict[str, Layout]:
    """The three parts of MEGC 2019 in their releases' layouts, holding every clip of the published list
    under its published name and an emotion that maps to its published class, plus the raw tables' clips
    the list leaves out: CASME II's two disgust clips, sub24's three clips (`others` in the 2014 table,
    `surprise` in the 2019 one: `casme2_table`), rows outside the classes (CASME II fear, sadness, others
    for sub10 and sub18, which have no clip in the classes; SAMM `Other`, all of 025's). Which negative
    emotion each listed clip has is not the release's (the published class is), nor are the frames."""
    if casme2_table not in ("2014", "2019"):
        raise ValueError(f"casme2_table must be 2014 or 2019, got {casme2_table!r}")
    listed = megc2019_listed()
    negatives = [e for e, n in SAMM_NEGATIVE.items() for _ in range(n)]
    casme2_rows, samm_rows = [], []
    emotion = {"positive": "happiness", "surprise": "surprise"}
    for part, sub, clip, label in listed:
        if part == "casme2":
            raw = emotion.get(label) or CASME2_NEGATIVE[len(casme2_rows) % len(CASME2_NEGATIVE)]
            casme2_rows.append(Row(f"{sub}/{clip}", int(sub[3:]), clip, 10, 13, 16, raw))
        elif part == "samm":
            raw = {"positive": "Happiness", "surprise": "Surprise"}.get(label) or negatives.pop()
            onset = 100 * (len(samm_rows) + 1)
            samm_rows.append(Row(f"{sub}/{clip}", int(sub), clip, onset, onset + 4, onset + 9, raw))
    extra = {**CASME2_UNLISTED, "sub10/EP13_01": "others", "sub18/EP08_02": "sadness", "sub01/EP04_02": "fear"}
    extra |= {key: "surprise" if casme2_table == "2019" else "others" for key in CASME2_SURPRISE_2019}
    for key, raw in extra.items():
        sub, clip = key.split("/")
        casme2_rows.append(Row(key, int(sub[3:]), clip, 10, 13, 16, raw))
    for clip in ("025_1_1", "025_2_1", "006_7_1"):
        onset = 100 * (len(samm_rows) + 1)
        samm_rows.append(Row(f"{clip[:3]}/{clip}", int(clip[:3]), clip, onset, onset + 4, onset + 9, "Other"))
    casme2 = _casme2_release_layout(
        tmp_path / "casme2", casme2_rows, frozenset({"coding_2019"} if casme2_table == "2019" else ())
    )
    samm = _samm_release_layout(tmp_path / "samm", samm_rows)
    smic = tmp_path / "smic" / "SMIC"
    for part, sub, clip, label in listed:
        if part == "smic":  # the release's names: s1/micro/negative/s1_ne_01 for the list's s01, s01_ne_01
            subject, name = f"s{int(sub[1:])}", f"s{int(sub[1:])}{clip[len(sub) :]}"
            folder = smic / "SMIC_all_raw" / "HS" / subject / "micro" / label / name
            folder.mkdir(parents=True)
            for n in range(1, 11):
                (folder / f"image{n:06d}.bmp").write_bytes(JPEG)
    return {"casme2": casme2, "samm": samm, "smic": Layout(smic, smic, {})}
