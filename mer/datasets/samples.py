"""A composite's published sample list: which clips of each part it holds, and their published class.

MEGC 2019's 442 clips are not what the raw tables give under the parts' protocols: the CASME II coding
table of 2014 gives 147 clips in the 3 classes and that of 2019 gives 150, where the published list has
145. `select` keeps exactly the listed clips of a part, names every clip the list leaves out with its
reason, and every listed clip the data lacks or labels otherwise (a fault: ingest stops, or skips it
under `ingest.on_error: skip`). A list is named by `protocols.<name>.samples` and kept in `LISTS` (CSV
text in a module, mer/datasets/megc2019.py, so the ingest stages depend on it), in the columns of its
source: `dataset` (the part), `sub`, `filename_o` and `label`, the class index in the composite
protocol's order (MEGC 2019: 0 negative, 1 positive, 2 surprise). Known reasons for a left-out clip are
kept below as data with their source, as errata are.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import pandas as pd

from mer.datasets import megc2019
from mer.datasets.records import IngestError
from mer.datasets.tables import column

LISTS = {megc2019.NAME: (megc2019.CSV, megc2019.SOURCE)}  # name -> (CSV text, where it was published)

COLUMNS = ("dataset", "sub", "filename_o", "label")
# HTNet's list zero-pads SMIC HS subjects: s01, s01_ne_01 for the release's folders s1/micro/negative/s1_ne_01
# (its `imagename` column keeps the release's clip name: s01_s1_ne_01.jpg).
SMIC_PADDED = re.compile(r"^s0+(?=\d)", re.IGNORECASE)
ISSUE_24 = "issue 24: the real CASME II coding tables (2014 and 2019) compared with the published list"
LEFT_OUT_BY_ORGANISERS = "disgust in both coding tables, yet left out of the published list"
CODED_2019 = "surprise in the 2019 coding table only; the published list follows the 2014 table"


@dataclass(frozen=True)
class Note:
    why: str
    source: str


NOTES = {  # (part, sample id) -> why the published list leaves the clip out
    ("casme2", "sub04/EP12_01f"): Note(LEFT_OUT_BY_ORGANISERS, ISSUE_24),
    ("casme2", "sub05/EP09_05f"): Note(LEFT_OUT_BY_ORGANISERS, ISSUE_24),
    ("casme2", "sub24/EP07_01"): Note(CODED_2019, ISSUE_24),
    ("casme2", "sub24/EP07_04f"): Note(CODED_2019, ISSUE_24),
    ("casme2", "sub24/EP10_03"): Note(CODED_2019, ISSUE_24),
}


@dataclass(frozen=True)
class SampleList:
    """Listed clips: (part, sample id as the part's reader names it) -> published class, and their CSV rows."""

    name: str
    source: str
    sha256: str  # of the CSV text
    labels: dict[tuple[str, str], str]
    rows: dict[tuple[str, str], int]

    def part(self, part: str) -> dict[str, str]:
        return {sample: label for (p, sample), label in self.labels.items() if p == part}

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "sha256": self.sha256, "clips": len(self.labels)}

    def where(self, row: int) -> str:
        return f"sample list {self.name}:row {row}"


def release_id(part: str, subject: str, clip: str) -> str:
    """The sample id the part's reader gives the listed clip (`smic`: s01/s01_ne_01 -> s1/s1_ne_01)."""
    if part == "smic":
        subject, clip = SMIC_PADDED.sub("s", subject, count=1), SMIC_PADDED.sub("s", clip, count=1)
    return f"{subject}/{clip}"


def load(name: str, classes: tuple[str, ...]) -> SampleList:
    """The published list `name` (a key of LISTS)."""
    if name not in LISTS:
        raise IngestError(f"unknown sample list {name!r} (protocols.<name>.samples); known: {', '.join(LISTS)}")
    text, source = LISTS[name]
    return read(name, text, classes, source)


def read(name: str, text: str, classes: tuple[str, ...], source: str = "") -> SampleList:
    """The list in CSV `text`; a row without part, clip or known class index, or listed twice, is an error naming it."""
    table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    cols = [column(table, f"sample list {name}", c) for c in COLUMNS]
    listed = SampleList(name, source, hashlib.sha256(text.encode()).hexdigest(), {}, {})
    for i, (part, subject, clip, label) in enumerate(table[cols].itertuples(index=False), start=2):
        where = listed.where(i)
        if not (part and subject and clip):
            raise IngestError(f"{where}: dataset, sub and filename_o must all be set")
        if not (label.isdigit() and int(label) < len(classes)):
            raise IngestError(f"{where}: label {label!r} is not a class index 0..{len(classes) - 1} of {classes}")
        key = (part, release_id(part, subject, clip))
        if key in listed.labels:
            raise IngestError(f"{where}: {part}/{key[1]} is listed twice (first at row {listed.rows[key]})")
        listed.labels[key], listed.rows[key] = classes[int(label)], i
    return listed


@dataclass
class Selection:
    keep: pd.Series  # per manifest row: listed, with the published class
    left_out: list[dict]  # clips of the data the list leaves out, with the reason
    faults: list[dict]  # listed clips the data lacks or labels otherwise


def select(part: str, table: pd.DataFrame, classes: pd.Series, report: dict, samples: SampleList) -> Selection:
    """Which rows of the part's manifest `table` (`classes`: each row's composite class, "" outside it) the
    list holds; `report` is the part's ingest report, which says why a listed clip is not in the manifest."""
    listed = samples.part(part)
    protocol, version = report["protocol"], report.get("table_version", "")
    table_name = f"{version} table layout" if version else report.get("dataset", {}).get("labels_file", "its table")
    left_out, faults, keep = [], [], []
    for row, got in zip(table.to_dict("records"), classes, strict=True):
        wanted = listed.get(row["sample_id"])
        keep.append(wanted is not None and wanted == got)
        if wanted is None and got:
            left_out.append(_left_out(part, row, got, protocol, table_name))
        elif wanted is not None and wanted != got:
            given = f"{got} under {protocol}" if got else f"outside the composite's classes under {protocol}"
            reason = f"listed as {wanted}, but {row['source']} labels it {row['emotion']}: {given}"
            faults.append(_fault(samples, part, row["sample_id"], reason))
    for sample_id in sorted(set(listed) - set(table.sample_id)):
        faults.append(_fault(samples, part, sample_id, _absence(part, sample_id, report)))
    return Selection(pd.Series(keep, index=table.index), left_out, faults)


def _left_out(part: str, row: dict, got: str, protocol: str, table_name: str) -> dict:
    note = NOTES.get((part, row["sample_id"]))
    reason = f"not in the published list ({row['emotion']}: {got} under {protocol}, {table_name})"
    return {
        "sample_id": f"{part}/{row['sample_id']}",
        "source": row["source"],
        "label": row["emotion"],
        "reason": reason + (f"; {note.why}" if note else ""),
        **({"reason_source": note.source} if note else {}),
    }


def _fault(samples: SampleList, part: str, sample_id: str, reason: str) -> dict:
    return {
        "source": samples.where(samples.rows[part, sample_id]),
        "sample_id": f"{part}/{sample_id}",
        "reason": reason,
    }


def _absence(part: str, sample_id: str, report: dict) -> str:
    """Why a listed clip is not among the part's clips, as its ingest report tells."""
    for row in report.get("dropped", []):
        if row["sample_id"] == sample_id:
            return f"listed, but {row['source']} labels it {row['label']}, outside {report['protocol']}"
    for row in report.get("rejected", []):
        if row["sample_id"] == sample_id:
            return f"listed, but ingest rejected it: {row['source']}: {row['reason']}"
    return f"listed, but ingest_part@{part} read no such clip (table and folders under {report['data_root']})"
