"""DVC stage `cache@<data set>`: pack the cropped onset/apex windows, labels and subjects into one HDF5 file.

reports/cache.json also carries what the landmarks and crop stages lost (`lost`), so that the report reads
what was lost upstream from ingest's and the cache's reports, whichever stages made the cache.

Reads no params: the classes and data set come from what ingest recorded, the crop size and windows
from crop's index, so the cache is rebuilt only when a file upstream changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
from tqdm import tqdm

from mer.cache import CacheWriter
from mer.datasets import manifest
from mer.face.crops import read_index, read_windows
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
    index = read_index(args.crops)
    clips = manifest.read(args.manifest).set_index("sample_id", drop=False)
    classes = ingested["classes"]
    depth = any(entry.depth for entry in index.clips.values())
    provenance = {"dataset": ingested["dataset"], "protocol": ingested["protocol"], "crop": index.settings}
    writer = CacheWriter(args.out, len(index.clips), index.window, index.size, classes, depth, provenance)
    with h5py.File(args.crops, "r") as crops:
        for sample_id, entry in tqdm(index.clips.items(), desc="cache", unit="clip"):
            writer.add(read_windows(crops, clips.loc[sample_id], entry))
    writer.close()
    labels = [clips.at[s, "label"] for s in index.clips]
    write_json(
        args.report,
        {
            "clips": len(index.clips),
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
    print(f"cache: {len(index.clips)} clips -> {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
