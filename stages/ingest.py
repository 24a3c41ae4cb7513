"""DVC stages `ingest` and `ingest_part@<part>`: label table + frame folders -> manifest and ingest report.

`ingest` reads `dataset`; for a composite data set (format `composite`: MEGC 2019, cross-data-set
protocols) it joins the parts that `ingest_part@<part>` (`--part <part>`, reading `dataset.parts.<part>`)
ingested into `dataset.root`/<part>/ (mer/datasets/composite.py).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from mer import dataset_root, failures
from mer.datasets import composite, manifest_store
from mer.datasets.ingest import ingest
from mer.datasets.keyframes import Repair
from mer.datasets.protocols import Protocol
from mer.datasets.records import IngestError
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--part", help="ingest this part of a composite data set (dataset.parts.<part>)")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    data, options = params["dataset"], params["ingest"]
    stage = f"ingest_part@{args.part}" if args.part else "ingest"
    try:
        if args.part:
            parts = data.get("parts") or {}
            if args.part not in parts:
                raise IngestError(f"no part {args.part!r} in dataset.parts (has {', '.join(parts) or 'none'})")
            clips, protocol, report = _read({"name": args.part, **parts[args.part]}, params, None)
        elif data["format"] == composite.FORMAT:
            protocol = Protocol.from_params(data["protocol"], params["protocols"])
            table, report = composite.join(
                data["root"], list(data.get("parts") or {}), protocol, data.get("folds", "subject"), data["subjects"]
            )
        else:
            clips, protocol, report = _read(data, params, data["subjects"])
    except (IngestError, ValueError) as exc:
        rejected = [
            {"source": r.source, "sample_id": r.sample_id, "reason": r.reason} for r in getattr(exc, "rejected", [])
        ]
        sys.exit(f"{stage}: {exc}\nFull list: {failures.error_report(stage, str(exc), rejected)}")
    failures.clear_error_report(stage)
    if not args.part and data["format"] == composite.FORMAT:
        manifest_store.write(args.manifest, table)
        described = {k: data[k] for k in ("name", "format", "root", "labels")}
    else:
        manifest_store.write(args.manifest, manifest_store.table(clips, protocol))
        described = _described({"name": args.part, **data["parts"][args.part]} if args.part else data)
    write_json(args.report, {"dataset": described, "on_error": options["on_error"], **report})
    r = report
    if r["data_root"] != described["root"]:
        print(f"{stage}: subject folders found in {r['data_root']} (below dataset.root {described['root']})")
    fixes = ", ".join(f"{n} {rule}" for rule, n in r["repairs"].items() if n)
    print(
        f"{stage}: {r['clips']} clips, {len(r['subjects'])} {'folds' if 'parts' in r else 'subjects'}, "
        f"{r['rejected_count']} rejected, {sum(r['dropped_by_protocol'].values())} outside protocol {r['protocol']!r}"
        + (f"; repaired: {fixes}" if fixes else "")
    )


def _read(data: dict, params: dict, expected: list[str] | None) -> tuple[list, Protocol, dict]:
    """One data set's clips, its protocol and report (`expected`: the LOSO subjects to check, if any)."""
    options = params["ingest"]
    protocol = Protocol.from_params(data["protocol"], params["protocols"])
    table = data.get("table")  # the precomputed format's columns and files
    dataset_root.check(data["root"], data["labels"], "files" if table else "frame folders")
    result = ingest(
        data["format"],
        data["root"],
        data["labels"],
        protocol,
        repair=Repair.from_params(options),
        margin=options["margin_frames"],
        on_error=options["on_error"],
        expected_subjects=expected,
        table=table,
    )
    return result.clips, protocol, result.report


def _described(data: dict) -> dict:
    """The data set as the report names it: params, and the label table's file name and SHA-256."""
    labels = Path(data["labels"])  # SMIC has no table: labels is its folder
    return {
        **{k: data[k] for k in ("name", "format", "root", "labels")},
        "labels_file": labels.name,
        "labels_sha256": hashlib.sha256(labels.read_bytes()).hexdigest() if labels.is_file() else None,
    }


if __name__ == "__main__":
    main()
