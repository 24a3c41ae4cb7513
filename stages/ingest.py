"""DVC stage `ingest`: label table + frame folders -> data/manifest.csv and reports/ingest.json."""
from __future__ import annotations

import argparse
import sys

from mer.datasets import manifest
from mer.datasets.ingest import ingest
from mer.datasets.records import IngestError
from mer.datasets.protocols import Protocol
from mer.io import load_params, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    data, options = params["dataset"], params["ingest"]
    protocol = Protocol.from_params(data["protocol"], params["protocols"])
    try:
        result = ingest(data["format"], data["root"], data["labels"], protocol,
                        apex_repair=options["apex_repair"], margin=options["margin_frames"],
                        on_error=options["on_error"], expected_subjects=data["subjects"])
    except IngestError as exc:
        sys.exit(f"ingest: {exc}")
    manifest.write(args.manifest, result.clips, protocol)
    write_json(args.report, {"dataset": {k: data[k] for k in ("name", "format", "root", "labels")},
                             "on_error": options["on_error"], **result.report})
    r = result.report
    print(f"ingest: {r['clips']} clips, {len(r['subjects'])} subjects, {r['rejected_count']} rejected, "
          f"{sum(r['dropped_by_protocol'].values())} outside protocol {r['protocol']!r}")


if __name__ == "__main__":
    main()
