"""DVC stage `ingest`: label table + frame folders -> data/manifest.csv and reports/ingest.json."""
from __future__ import annotations

import argparse
import sys

from mer import dataset_root, failures
from mer.datasets import manifest
from mer.datasets.ingest import ingest
from mer.datasets.records import IngestError
from mer.datasets.protocols import Protocol
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", default="data/manifest.csv")
    parser.add_argument("--report", default="reports/ingest.json")
    args = parser.parse_args()

    params = load_params(args.params)
    data, options = params["dataset"], params["ingest"]
    protocol = Protocol.from_params(data["protocol"], params["protocols"])
    try:
        dataset_root.check(data["root"], data["labels"])
        result = ingest(data["format"], data["root"], data["labels"], protocol,
                        apex_repair=options["apex_repair"], margin=options["margin_frames"],
                        on_error=options["on_error"], expected_subjects=data["subjects"])
    except IngestError as exc:
        rejected = [{"source": r.source, "sample_id": r.sample_id, "reason": r.reason}
                    for r in getattr(exc, "rejected", [])]
        sys.exit(f"ingest: {exc}\nFull list: {failures.error_report('ingest', str(exc), rejected)}")
    failures.clear_error_report("ingest")
    manifest.write(args.manifest, result.clips, protocol)
    write_json(args.report, {"dataset": {k: data[k] for k in ("name", "format", "root", "labels")},
                             "on_error": options["on_error"], **result.report})
    r = result.report
    print(f"ingest: {r['clips']} clips, {len(r['subjects'])} subjects, {r['rejected_count']} rejected, "
          f"{sum(r['dropped_by_protocol'].values())} outside protocol {r['protocol']!r}")


if __name__ == "__main__":
    main()
