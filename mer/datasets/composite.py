"""Composite data sets (MEGC 2019, cross-data-set protocols): ingested parts joined into one manifest.

Each part is ingested on its own, by its reader under its own protocol and repair rules (the DVC stage
`ingest_part@<part>`, whose deps are exactly that part's root and table), into `<root>/<part>/`
(`manifest.csv`, `ingest.json`). `join` reads them back: the composite protocol maps each part's
classes to the composite's (and fixes their indices), sample ids become `<part>/<sample id>` and the
`dataset` column names the part. The fold unit (`dataset.folds`, mer/datasets/subjects.py) is the
subject, its id prefixed with the part (`casme2_sub01`, `samm_006`: ids stay unique across parts), or the
whole part, so a fold tests on one data set after training on the others (cross-data-set evaluation)
without the fold stage knowing: the manifest's `subject` column is the fold unit, the real subject stays
in the sample id.
A composite protocol with a published sample list (MEGC 2019's 442 clips) keeps exactly the listed clips
of each part (mer/datasets/samples.py); the report names every clip left out and why. A listed clip the
data lacks or labels otherwise stops ingest, or is skipped and reported when the parts were ingested
under `ingest.on_error: skip`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from mer.datasets import manifest_store, samples
from mer.datasets.ingest import REPAIRS, RowsRejected
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError, Rejection
from mer.datasets.subjects import FOLDS, fold_unit, fold_units, subjects_fault
from mer.io import read_json

FORMAT = "composite"
PART_MANIFEST, PART_REPORT = "manifest.csv", "ingest.json"


def part_folder(root: str | Path, part: str) -> Path:
    """Where `ingest_part@<part>` writes the part's manifest and report."""
    return Path(root) / part


def join(
    root: str | Path, parts: list[str], protocol: Protocol, folds: str, expected: list[str]
) -> tuple[pd.DataFrame, dict]:
    """The composite manifest (manifest_store.COLUMNS + `dataset`) and its ingest report, from the parts in `root`."""
    if folds not in FOLDS:
        raise IngestError(f"dataset.folds must be one of {FOLDS}, got {folds!r}")
    if not parts:
        raise IngestError("a composite data set needs dataset.parts (name -> format, root, labels, protocol)")
    listed = samples.load(protocol.samples, protocol.classes) if protocol.samples else None
    tables, reports, dropped, left_out, faults = [], {}, Counter[str](), [], []
    subjects: dict[str, list[str]] = {}  # part -> the subjects of its clips kept
    for part in parts:
        table, report = _read_part(root, part)
        reports[part] = report
        mapped = table.label.map(lambda label: protocol.label(label) or "")
        dropped.update(f"{part}:{label}" for label in table.label[mapped == ""])
        kept = mapped != ""
        if listed is not None:
            selection = samples.select(part, table, mapped, report, listed)
            left_out += selection.left_out
            faults += selection.faults
            kept = selection.keep
        table = table[kept].assign(label=mapped[kept])
        subjects[part] = list(table.subject)
        table = table.assign(
            label_index=table.label.map(protocol.index),
            sample_id=f"{part}/" + table.sample_id,
            subject=table.subject.map(lambda subject, part=part: fold_unit(part, subject, folds)),
            dataset=part,
        )
        tables.append(table)
    _check_listed(faults, reports)
    joined = pd.concat(tables, ignore_index=True)
    if joined.empty:
        raise IngestError(f"{root}: no clip of the parts {parts} falls in protocol {protocol.name!r}")
    units = fold_units(subjects, folds)
    fault = subjects_fault(expected, units, folds)
    if fault:
        raise IngestError(fault)
    report = _report(root, joined, reports, dropped, protocol, folds, units)
    if listed is not None:
        report["samples"] = {**listed.describe(), "left_out": left_out, "faults": faults}
    return joined[[*manifest_store.COLUMNS, "dataset"]], report


def _read_part(root: str | Path, part: str) -> tuple[pd.DataFrame, dict]:
    folder = part_folder(root, part)
    files = folder / PART_MANIFEST, folder / PART_REPORT
    if not all(f.is_file() for f in files):
        raise IngestError(
            f"part {part!r}: no {files[0]} and {files[1]}; they are written by the stage ingest_part@{part} "
            f"(`dvc repro ingest_part@{part}`), from dataset.parts.{part}"
        )
    table = pd.read_csv(files[0], dtype=str, keep_default_na=False)
    missing = [c for c in manifest_store.COLUMNS if c not in table.columns]
    if missing:
        raise IngestError(f"{files[0]}: not an ingest manifest (missing columns {missing})")
    return table, read_json(files[1])


def _check_listed(faults: list[dict], reports: dict[str, dict]) -> None:
    """Listed clips the data lacks or labels otherwise: an error, unless the parts were ingested with on_error skip."""
    if faults and any(report.get("on_error", "fail") != "skip" for report in reports.values()):
        listing = "\n".join(f"  {f['source']} ({f['sample_id']}): {f['reason']}" for f in faults[:50])
        more = f"\n  ... and {len(faults) - 50} more" if len(faults) > 50 else ""
        raise RowsRejected(
            [Rejection(f["source"], f["reason"], f["sample_id"]) for f in faults],
            f"{len(faults)} clip(s) of the published sample list not found as listed (set ingest.on_error: skip "
            f"to leave them out and record why):\n{listing}{more}",
        )


def _report(
    root: str | Path,
    joined: pd.DataFrame,
    reports: dict[str, dict],
    dropped: Counter,
    protocol: Protocol,
    folds: str,
    units: list[str],
) -> dict:
    per_class = Counter(joined.label)
    per_unit = Counter(joined.subject)
    repairs = joined.repairs.map(lambda s: s.split(manifest_store.SEP) if s else [])
    outside = dropped + Counter(
        {f"{part}:{label}": n for part, report in reports.items() for label, n in report["dropped_by_protocol"].items()}
    )
    return {
        "data_root": str(root),
        "errata": [{**e, "dataset": part} for part, report in reports.items() for e in report["errata"]],
        "protocol": protocol.name,
        "classes": list(protocol.classes),
        "folds": folds,
        "clips": len(joined),
        "subjects": units,
        "per_class": {name: per_class.get(name, 0) for name in protocol.classes},
        "per_subject": {u: per_unit[u] for u in units},
        "per_dataset": {part: int((joined.dataset == part).sum()) for part in reports},
        "frames": int(joined.frames.map(lambda s: len(s.split(manifest_store.SEP))).sum()),
        "apex_repaired": int((joined.apex_repaired == "True").sum()),
        "repairs": {rule: int(repairs.map(lambda r, rule=rule: rule in r).sum()) for rule in REPAIRS},
        "repaired": {
            rule: [s for s, r in zip(joined.sample_id, repairs, strict=True) if rule in r] for rule in REPAIRS
        },
        "reader_counts": {
            f"{part}:{k}": v for part, report in reports.items() for k, v in report["reader_counts"].items()
        },
        "dropped_by_protocol": dict(sorted(outside.items())),
        "rejected_count": sum(report["rejected_count"] for report in reports.values()),
        "rejected": [{**r, "dataset": part} for part, report in reports.items() for r in report["rejected"]],
        "dropped": [
            {**d, "sample_id": f"{part}/{d['sample_id']}"}
            for part, report in reports.items()
            for d in report["dropped"]
        ],
        "parts": {
            part: {
                "dataset": report["dataset"],
                "data_root": report["data_root"],
                "protocol": report["protocol"],
                "clips": int((joined.dataset == part).sum()),
                "subjects": report["subjects"],
                "table_version": report.get("table_version", ""),
            }
            for part, report in reports.items()
        },
    }
