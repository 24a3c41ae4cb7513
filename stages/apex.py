"""DVC stage `apex@<data set>` (only when `ingest.apex_repair` is `spot`): the apex of each row ingest could not
take from its table, spotted inside onset..offset on the normalised face (mer/spotting/apex.py), into a copy
of the manifest that crop and cache read; reports/apex.json counts them and checks the method on the clips
whose apex is labelled."""

from __future__ import annotations

import argparse
import sys

from mer.datasets import manifest_store
from mer.datasets.keyframes import Repair
from mer.face import normalised_store
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent
from mer.spotting.apex import spot_apexes


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", required=True, help="ingest's manifest")
    parser.add_argument("--normalised", required=True, help="the normalise stage's file (data/normalised.h5)")
    parser.add_argument("--out", required=True, help="the manifest with the spotted apexes")
    parser.add_argument("--report", required=True, help="JSON: clips spotted, apex error on the labelled ones")
    args = parser.parse_args()

    params = load_params(args.params)
    try:
        rules = Repair.from_params(params["ingest"]).spotted()
        result = spot_apexes(
            manifest_store.read(args.manifest), normalised_store.read(args.normalised), rules, params["spot"]["flow"]
        )
    except ValueError as exc:
        sys.exit(f"apex: {exc}")
    manifest_store.write(args.out, result.manifest)
    write_json(args.report, result.metrics)
    m, e, mid = result.metrics, result.metrics["apex_error"], result.metrics["middle_error"]
    print(
        f"apex: {m['spotted']} of {m['clips']} clips given a spotted apex ({', '.join(rules) or 'no rule'}); "
        f"on the {m['labelled']} labelled apexes the spotted one is off by {e['mean']} frames (p90 {e['p90']}), "
        f"the middle by {mid['mean']} (p90 {mid['p90']})"
    )


if __name__ == "__main__":
    main()
