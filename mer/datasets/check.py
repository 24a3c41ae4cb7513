"""What `mer check-data` checks (mer/commands/check_data.py): the configured data set's label table and frame
folders, read as ingest reads them, each problem said as what was found, what was expected and how to fix it.
A composite is checked part by part, its fold list (and published sample list) as ingest joins them. Reads
only."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from mer.datasets import composite, readers, samples
from mer.datasets.ingest import IngestResult, ingest, read_dataset
from mer.datasets.keyframes import Repair
from mer.datasets.protocols import Protocol
from mer.datasets.readers import ReaderSpec
from mer.datasets.records import IngestError
from mer.datasets.samples import SampleList
from mer.datasets.subjects import fold_units, subjects_fault

TABLE_SUFFIXES = {".xlsx", ".xls", ".xlsm", ".csv"}
SHOWN = 5  # examples printed per problem


@dataclass(frozen=True)
class Problem:
    what: str
    found: str
    expected: str
    fix: str


@dataclass
class Check:
    """What the check saw: problems (any one stops ingest), notes, and the subject list."""

    problems: list[Problem]
    notes: list[str]
    subjects: list[str] | None = None
    clips: list[tuple[str, str]] = field(default_factory=list)  # (subject, label) of each clip kept
    ingested: IngestResult | None = None  # what ingest made of the data, when it got that far

    @property
    def ok(self) -> bool:
        return not self.problems


def check(params: dict) -> Check:
    """Every problem that would stop `ingest` with these params, found without writing anything."""

    data = params["dataset"]
    folds = data.get("folds", "subject") if data["format"] == composite.FORMAT else "subject"
    result = _check_composite(params) if data["format"] == composite.FORMAT else _check_one(data, params)
    fault = None if result.subjects is None else subjects_fault(data["subjects"], result.subjects, folds)
    if fault:
        by_subject = folds == "subject"
        result.problems.append(
            Problem(
                "LOSO subject list",
                f"dataset.subjects = {json.dumps(list(data['subjects']))}",
                f"the data's {'subjects' if by_subject else 'parts with clips'} = {json.dumps(result.subjects)}",
                "paste the subject list below into the dataset config" if by_subject else fault,
            )
        )
    return result


def _check_composite(params: dict) -> Check:
    """A composite (MEGC 2019, cross-data-set): each part checked as its own data set, then the fold units
    of the union as `ingest` would join them (mer/datasets/composite.py)."""

    data = params["dataset"]
    parts, folds = data.get("parts") or {}, data.get("folds", "subject")
    result = Check(
        [], [f"data set {data['name']!r}: a composite of {', '.join(parts) or 'no parts'}, folds by {folds}"]
    )
    if not parts:
        result.problems.append(
            Problem("no parts", "dataset.parts is empty", "name -> format, root, labels, protocol", "set dataset.parts")
        )
        return result
    protocol = Protocol.from_params(data["protocol"], params["protocols"])
    listed = samples.load(protocol.samples, protocol.classes) if protocol.samples else None
    kept: dict[str, list[str]] = {}  # part -> the subjects of its clips in the composite's classes
    for name, spec in parts.items():
        part = _check_one({"name": name, **spec}, params)
        if listed is not None and part.ingested is not None:
            part.clips = _listed_clips(name, spec, part, protocol, listed, params["ingest"]["on_error"])
        result.notes += [f"part {name}: {note}" for note in part.notes]
        result.problems += [replace(problem, what=f"part {name}: {problem.what}") for problem in part.problems]
        kept[name] = [subject for subject, label in part.clips if protocol.label(label)]
    if not result.problems:
        result.subjects = fold_units(kept, folds)
    return result


def _listed_clips(
    name: str, spec: dict, part: Check, protocol: Protocol, listed: SampleList, on_error: str
) -> list[tuple[str, str]]:
    """The part's clips that the composite's sample list holds, as `ingest` keeps them (mer/datasets/samples.py);
    notes the clips left out, and a problem for listed clips missing or labelled otherwise unless skipped."""

    assert part.ingested is not None
    clips = part.ingested.clips
    table = pd.DataFrame(
        {
            "sample_id": [c.sample_id for c in clips],
            "emotion": [c.emotion for c in clips],
            "source": [c.source for c in clips],
        }
    )
    classes = pd.Series([protocol.label(label) or "" for _, label in part.clips])
    report = {**part.ingested.report, "dataset": {"labels_file": Path(spec["labels"]).name}}
    selection = samples.select(name, table, classes, report, listed)
    if selection.left_out:
        part.notes.append(
            f"{len(selection.left_out)} clip(s) left out by the sample list {listed.name}: "
            + "; ".join(f"{c['sample_id']} {c['reason']}" for c in selection.left_out[:SHOWN])
        )
    if selection.faults:
        listing = "; ".join(f"{f['source']} ({f['sample_id']}): {f['reason']}" for f in selection.faults[:SHOWN])
        if on_error == "fail":
            part.problems.append(
                Problem(
                    f"{len(selection.faults)} clip(s) of the sample list {listed.name} not found as listed",
                    listing,
                    "every listed clip in the data, labelled as listed",
                    "fix those rows or folders, or set ingest.on_error=skip to leave them out",
                )
            )
        else:
            part.notes.append(f"{len(selection.faults)} listed clip(s) will be skipped: {listing}")
    return [clip for clip, keep in zip(part.clips, selection.keep, strict=True) if keep]


def _check_one(data: dict, params: dict) -> Check:
    """One data set's problems, notes, subjects and (subject, label) per clip in its protocol."""

    options = params["ingest"]
    fmt, root, labels = data["format"], Path(data["root"]), Path(data["labels"])
    result = Check([], [f"data set {data['name']!r}: format {fmt}, root {root}, table {labels}"])
    formats = readers.readers()
    if fmt not in formats:
        result.problems.append(Problem("unknown format", repr(fmt), ", ".join(formats), "set dataset.format"))
        return result
    spec = formats[fmt].SPEC
    if not labels.is_file() and spec.table:
        result.problems.append(_table_not_found(labels, root))
    if not root.is_dir():
        result.problems.append(_root_not_found(root))
    if result.problems:
        if data["name"] == "synthetic":
            result.notes.append("the synthetic data set is written by its stage: run `dvc repro synthesize` first")
        return result
    repair, margin = Repair.from_params(options), options["margin_frames"]
    try:
        read = read_dataset(fmt, root, labels, repair, margin, data.get("table"))
    except IngestError as exc:
        result.problems.append(_table_unreadable(str(exc), fmt))
        return result
    if read.data_root and Path(read.data_root) != root:
        result.notes.append(
            f"subject folders found in {read.data_root}, below dataset.root (used as it is; "
            f"dataset.root={read.data_root} says so directly)"
        )
    rows = len(read.clips) + len(read.rejected)
    result.notes.append(f"{len(read.clips)} of {rows} table rows resolve to frame files")
    result.problems += _layout_problems(read.rejected, read.subjects, Path(read.data_root or root), spec)
    if not read.clips or result.problems:  # a subject list or row listing would only repeat the layout's fault
        return result
    protocol = Protocol.from_params(data["protocol"], params["protocols"])
    try:
        done = ingest(
            fmt, root, labels, protocol, repair=repair, margin=margin, on_error="skip", table=data.get("table")
        )
    except IngestError as exc:
        result.problems.append(
            Problem(
                "no usable clip",
                str(exc),
                f"clips labelled {sorted(protocol.mapping)}",
                "check dataset.protocol against the table's emotion column",
            )
        )
        return result
    report = done.report
    fixed = {rule: n for rule, n in report["repairs"].items() if n}
    result.notes.append(
        f"{report['clips']} clips in protocol {protocol.name!r} from {len(report['subjects'])} "
        f"subjects; per class {report['per_class']}; repaired {fixed or 'none'}; "
        f"outside the protocol {report['dropped_by_protocol'] or 'none'}"
    )
    if report["rejected"] and options["on_error"] == "fail" and not result.problems:
        listing = "; ".join(f"{r['source']}: {r['reason']}" for r in report["rejected"][:SHOWN])
        result.problems.append(
            Problem(
                f"{len(report['rejected'])} row(s) rejected",
                listing,
                "every row resolves to its frames",
                "fix those rows or folders, or set ingest.on_error=skip to leave them out",
            )
        )
    result.subjects = report["subjects"]
    result.clips = [(clip.subject, protocol.label(clip.emotion) or "") for clip in done.clips]
    result.ingested = done
    return result


def _table_not_found(labels: Path, root: Path) -> Problem:
    near = [p for base in (labels.parent, root.parent, root) for p in _tables_near(base)]
    fix = (
        f"set dataset.labels to one of: {', '.join(map(str, dict.fromkeys(near)))}"
        if near
        else "set dataset.labels to the coding table of your copy"
    )
    return Problem("label table not found", f"no file {labels}", "the data set's coding table (xlsx or csv)", fix)


def _tables_near(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    found = [p for depth in ("*", "*/*") for p in base.glob(depth) if p.suffix.lower() in TABLE_SUFFIXES]
    return sorted(found)[:SHOWN]


def _root_not_found(root: Path) -> Problem:
    existing = next((p for p in root.parents if p.is_dir()), Path("."))
    inside = sorted(p.name for p in existing.iterdir() if p.is_dir())[: SHOWN * 2]
    return Problem(
        "data root not found",
        f"no folder {root}; nearest existing is {existing}, holding {inside or 'no folders'}",
        "the folder that holds the subject folders (or up to 3 levels above)",
        "set dataset.root to it, e.g. `mer check-data dataset.root=<folder>`",
    )


def _table_unreadable(message: str, fmt: str) -> Problem:
    kinds = (
        ("no sheet named", "wrong sheet"),
        ("no header row", "header not found"),
        ("missing column", "missing column"),
        ("cannot read", "table unreadable"),
        ("this looks like the", "table of another data set"),
    )
    what = next((kind for key, kind in kinds if key in message), "table unreadable")
    return Problem(
        what,
        message,
        f"the {fmt} coding table as released (header row with 'Subject')",
        "point dataset.labels at the right table, or dataset.format at the right data set",
    )


def _layout_problems(rejected: list, subjects: set[str], data_root: Path, spec: ReaderSpec) -> list[Problem]:
    """Subject-folder and frame-file naming (the reader's spec says how the release names them), read from
    the rows' rejections."""
    reasons = Counter(_kind(r.reason) for r in rejected)
    problems = []
    folder_naming, frame_naming = spec.folders, spec.frames
    missing = [r for r in rejected if _kind(r.reason) == "frame folder missing"]
    if missing and len(missing) == reasons.total():
        present = sorted(p.name for p in data_root.iterdir() if p.is_dir()) if data_root.is_dir() else []
        near = _near_misses(sorted(subjects), present)
        found = (
            f"{len(missing)} rows name folders that do not exist, e.g. {_folder(missing[0].reason)}; "
            f"{data_root} holds {present[: SHOWN * 2] or 'no folders'}"
        )
        fix = (
            f"rename the folders to the table's names ({near}), or use the full release"
            if near
            else "set dataset.root to the folder holding the subject folders"
        )
        problems.append(Problem("subject folder naming", found, folder_naming, fix))
    unnamed = [r for r in rejected if _kind(r.reason) == "no frame files"]
    if unnamed and len(unnamed) * 2 > len(rejected):
        folder = _folder(unnamed[0].reason)
        files = sorted(os.listdir(folder))[:SHOWN] if folder and os.path.isdir(folder) else []
        problems.append(
            Problem(
                "frame file naming",
                f"{len(unnamed)} rows find no file named as expected; {folder} holds {files or 'no files'}",
                frame_naming,
                "rename the frame files, or point dataset.root at the release with the expected names",
            )
        )
    return problems


def _kind(reason: str) -> str:
    if reason.startswith("frame folder missing"):
        return "frame folder missing"
    if reason.startswith("no frame files"):
        return "no frame files"
    if re.match(r"(onset|apex|offset) frame \d+ has no file", reason):
        return "key frame has no file"
    return reason


def _folder(reason: str) -> str:
    match = re.search(r"(?:missing: | in )(.+?)(?: \(colour and depth\))?$", reason)
    return match.group(1) if match else ""


def _near_misses(wanted: list[str], present: list[str]) -> str:
    """`table name <- folder name` for folders that differ only in zero padding, case or a suffix
    (`sub1` for sub01, `6` for 006, the pre-clipped `spNo.1_a_355` for spNO.1)."""
    keys = {w: _name_key(w) for w in wanted}
    pairs = [f"{w} <- {p}" for p in present for w, key in keys.items() if p != w and key and _name_key(p) == key]
    return ", ".join(pairs[:SHOWN])


def _name_key(name: str) -> tuple[str, int] | None:
    match = re.match(r"(\D*)(\d+)", name)
    return (match.group(1).lower(), int(match.group(2))) if match else None
