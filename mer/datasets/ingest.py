"""Raw label table + frame folders -> checked clips and an ingest report.

Known key-frame faults are fixed first, by published errata and then by the repair rules of
`mer.datasets.keyframes`; every fix is counted per rule and listed by clip id in the report.
Row faults left (no usable onset or apex frame, missing files, paths escaping the root, duplicate
clip ids, subjects left with no usable clip) are collected as rejections; `on_error="fail"` turns any
of them into an IngestError listing them all, `"skip"` keeps going and reports them. Labels
outside the protocol are dropped and counted: that is the protocol, not a fault, so a subject
whose clips all fall outside it (4 of SAMM's 32 under its 5-class protocol) just leaves the
subject list.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mer.datasets import readers
from mer.datasets.keyframes import CHOICES, DEFAULT_REPAIR, Repair
from mer.datasets.protocols import Protocol
from mer.datasets.readers import reader_module as reader_module  # with FORMATS, what mer/deps.py follows
from mer.datasets.records import Clip, IngestError, ReadResult, Rejection
from mer.datasets.subjects import natural_key, subjects_fault

ON_ERROR = ("fail", "skip")
REPAIRS = ("erratum", *CHOICES)  # what a clip's `repairs` may name, in report order


class RowsRejected(IngestError):
    """Rows rejected under on_error: fail; carries every one (the message lists the first 50)."""

    def __init__(self, rejected: list[Rejection], message: str) -> None:
        super().__init__(message)
        self.rejected = rejected


@dataclass
class IngestResult:
    clips: list[Clip]
    report: dict


def __getattr__(name: str) -> tuple[str, ...]:
    """`FORMATS`: the formats of the readers in mer/datasets (mer/datasets/readers.py), found when asked, so a
    reader module added since counts (mer/deps.py follows each of them from here)."""
    if name == "FORMATS":
        return readers.formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_dataset(
    fmt: str, root: str | Path, labels: str | Path, repair: Repair, margin: int, table: dict | None = None
) -> ReadResult:
    """`table`: the reader's own options (`dataset.table`), for the readers that take them (precomputed)."""
    reader = readers.reader(fmt)
    options = {} if table is None else {"table": table}
    result: ReadResult = reader.read(root, labels, repair=repair, margin=margin, **options)
    result.vocabulary = reader.SPEC.labels
    return result


def ingest(
    fmt: str,
    root: str | Path,
    labels: str | Path,
    protocol: Protocol,
    *,
    repair: Repair = DEFAULT_REPAIR,
    margin: int = 4,
    on_error: str = "fail",
    expected_subjects: list[str] | None = None,
    table: dict | None = None,
) -> IngestResult:
    if on_error not in ON_ERROR:
        raise IngestError(f"ingest.on_error must be one of {ON_ERROR}, got {on_error!r}")
    result = read_dataset(fmt, root, labels, repair, margin, table)
    clips, rejected = _drop_duplicates(result.clips)
    rejected = result.rejected + rejected
    dropped: Counter = Counter()
    dropped_rows = []
    kept = []
    for clip in clips:
        if protocol.label(clip.emotion) is not None:
            kept.append(clip)
        elif result.vocabulary is None or clip.emotion in result.vocabulary:
            dropped[clip.emotion] += 1
            dropped_rows.append({"source": clip.source, "sample_id": clip.sample_id, "label": clip.emotion})
        else:
            rejected.append(
                Rejection(
                    clip.source,
                    (
                        f"unknown label {clip.emotion!r} (the {fmt} labels are {', '.join(sorted(result.vocabulary))})"
                        if result.vocabulary
                        else f"label {clip.emotion!r} is not in protocol {protocol.name!r} (which maps "
                        f"{', '.join(sorted(protocol.mapping))})"
                    )
                    + f": fix the cell, or map it in protocols.{protocol.name}.map",
                    clip.sample_id,
                )
            )
    rejected += _subjects_without_clips(result.subjects, clips)
    if rejected and on_error == "fail":
        listing = "\n".join(f"  {r}" for r in rejected[:50])
        more = f"\n  ... and {len(rejected) - 50} more" if len(rejected) > 50 else ""
        raise RowsRejected(
            rejected,
            f"{len(rejected)} label row(s) rejected (set ingest.on_error: skip to skip them "
            f"and record why):\n{listing}{more}",
        )
    if not kept:
        raise IngestError(f"{labels}: no usable clip under protocol {protocol.name!r}")
    subjects = sorted({c.subject for c in kept}, key=natural_key)
    fault = None if expected_subjects is None else subjects_fault(expected_subjects, subjects)
    if fault:
        raise IngestError(fault)
    kept.sort(key=lambda c: (natural_key(c.subject), natural_key(c.sample_id)))
    report = _report(kept, rejected, dropped, result.counts, protocol, subjects)
    if table and table.get("part"):  # parts of a composite in one table: scored apart too, as composite's
        report["per_dataset"] = dict(Counter(c.sample_id.split("/")[0] for c in kept))
    version = {"table_version": result.table_version} if result.table_version else {}
    return IngestResult(
        kept,
        {
            "data_root": result.data_root or str(root),
            **version,
            "errata": result.errata,
            **report,
            "dropped": dropped_rows,
        },
    )


def _drop_duplicates(clips: list[Clip]) -> tuple[list[Clip], list[Rejection]]:
    first: dict[str, Clip] = {}
    rejected = []
    for clip in clips:
        if clip.sample_id in first:
            rejected.append(
                Rejection(
                    clip.source, f"duplicate clip id, first seen at {first[clip.sample_id].source}", clip.sample_id
                )
            )
        else:
            first[clip.sample_id] = clip
    return list(first.values()), rejected


def _subjects_without_clips(seen: set[str], clips: list[Clip]) -> list[Rejection]:
    missing = sorted(seen - {c.subject for c in clips}, key=natural_key)
    return [Rejection(f"subject {s}", "subject has no usable clip (all its rows were rejected)", s) for s in missing]


def _report(
    clips: list[Clip],
    rejected: list[Rejection],
    dropped: Counter,
    counts: Counter,
    protocol: Protocol,
    subjects: list[str],
) -> dict:
    per_class = Counter(protocol.label(c.emotion) for c in clips)
    per_subject = Counter(c.subject for c in clips)
    return {
        "protocol": protocol.name,
        "classes": list(protocol.classes),
        "clips": len(clips),
        "subjects": subjects,
        "per_class": {name: per_class.get(name, 0) for name in protocol.classes},
        "per_subject": {s: per_subject[s] for s in subjects},
        "frames": sum(len(c.frames) for c in clips),
        "apex_repaired": sum(c.apex_repaired for c in clips),
        "repairs": {rule: sum(rule in c.repairs for c in clips) for rule in REPAIRS},
        "repaired": {rule: [c.sample_id for c in clips if rule in c.repairs] for rule in REPAIRS},
        "reader_counts": dict(sorted(counts.items())),
        "dropped_by_protocol": dict(sorted(dropped.items())),
        "rejected_count": len(rejected),
        "rejected": [{"source": r.source, "sample_id": r.sample_id, "reason": r.reason} for r in rejected],
    }
