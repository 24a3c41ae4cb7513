"""DVC stage `ingest`: label table + frame folders -> data/manifest.csv and reports/ingest.json."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from mer import dataset_root, failures
from mer.datasets import manifest
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
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    data, options = params["dataset"], params["ingest"]
    protocol = Protocol.from_params(data["protocol"], params["protocols"])
    try:
        dataset_root.check(data["root"], data["labels"])
        result = ingest(
            data["format"],
            data["root"],
            data["labels"],
            protocol,
            repair=Repair.from_params(options),
            margin=options["margin_frames"],
            on_error=options["on_error"],
            expected_subjects=data["subjects"],
        )
    except (IngestError, ValueError) as exc:
        rejected = [
            {"source": r.source, "sample_id": r.sample_id, "reason": r.reason} for r in getattr(exc, "rejected", [])
        ]
        sys.exit(f"ingest: {exc}\nFull list: {failures.error_report('ingest', str(exc), rejected)}")
    failures.clear_error_report("ingest")
    manifest.write(args.manifest, result.clips, protocol)
    labels = Path(data["labels"])  # SMIC has no table: labels is its folder
    labels_sha256 = hashlib.sha256(labels.read_bytes()).hexdigest() if labels.is_file() else None
    write_json(
        args.report,
        {
            "dataset": {
                **{k: data[k] for k in ("name", "format", "root", "labels")},
                "labels_file": Path(data["labels"]).name,
                "labels_sha256": labels_sha256,
            },
            "on_error": options["on_error"],
            **result.report,
        },
    )
    r = result.report
    if r["data_root"] != data["root"]:
        print(f"ingest: subject folders found in {r['data_root']} (below dataset.root {data['root']})")
    fixes = ", ".join(f"{n} {rule}" for rule, n in r["repairs"].items() if n)
    print(
        f"ingest: {r['clips']} clips, {len(r['subjects'])} subjects, {r['rejected_count']} rejected, "
        f"{sum(r['dropped_by_protocol'].values())} outside protocol {r['protocol']!r}"
        + (f"; repaired: {fixes}" if fixes else "")
    )


if __name__ == "__main__":
    main()
