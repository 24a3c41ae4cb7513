"""DVC stage `cache@<data set>`: pack the cropped onset/apex windows, labels and subjects into one HDF5 file.

reports/cache.json also carries what the landmarks and crop stages lost (`lost`), so that the report reads
what was lost upstream from ingest's and the cache's reports, whichever stages made the cache.

Reads no params: the classes and data set come from what ingest recorded, the crop size and windows
from crop's index, so the cache is rebuilt only when a file upstream changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from mer.cache_store import CacheWriter
from mer.datasets import manifest_store
from mer.face.crop_store import Crops
from mer.io import read_json, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--ingest", required=True, help="ingest's report: the protocol's classes and the data set")
    parser.add_argument("--crops", required=True, help="the crop stage's file (data/crops.h5)")
    parser.add_argument(
        "--lost",
        nargs=2,
        required=True,
        metavar=("LANDMARKS", "CROP"),
        help="the landmarks and crop reports: what they lost is carried into the cache report for the report stage",
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    ingested = read_json(args.ingest)
    clips = manifest_store.read(args.manifest).set_index("sample_id", drop=False)
    classes = ingested["classes"]
    with Crops(args.crops) as crops:
        depth = any(entry.depth for entry in crops.clips.values())
        provenance = {"dataset": ingested["dataset"], "protocol": ingested["protocol"], "crop": crops.settings}
        with CacheWriter(args.out, len(crops.clips), crops.window, crops.size, classes, depth, provenance) as writer:
            for sample_id in tqdm(crops.clips, desc="cache", unit="clip"):
                writer.add(crops.windows(clips.loc[sample_id]))
    labels = [clips.at[s, "label"] for s in crops.clips]
    write_json(
        args.report,
        {
            "clips": len(crops.clips),
            "classes": classes,
            "depth": depth,
            "per_class": {c: labels.count(c) for c in classes},
            "bytes": Path(args.out).stat().st_size,
            "lost": {
                stage: {key: report[key] for key in ("failed", "failed_by_kind")}
                for stage, report in zip(("landmarks", "crop"), map(read_json, args.lost), strict=True)
            },
        },
    )
    print(f"cache: {len(crops.clips)} clips -> {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
