"""DVC stage `precomputed@<data set>`: a precomputed-inputs data set's files straight into the training cache.

For format `precomputed` (mer/datasets/precomputed.py) the face stages do not exist: this stage reads each
manifest row's file (ingest has checked its size and channels) into `motion` of data/cache.h5 (mer.cache_store),
in the manifest's order, and writes reports/cache.json as the face chain's cache stage does. Reads
`dataset.table` (size, channels) only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mer.cache_store import write_precomputed
from mer.datasets import manifest_store
from mer.datasets.precomputed import load_input
from mer.io import load_params, read_json, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--ingest", required=True, help="ingest's report: the protocol's classes and the data set")
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    table = load_params(args.params)["dataset"]["table"]
    ingested = read_json(args.ingest)
    clips = manifest_store.read(args.manifest)
    size, channels = int(table["size"]), int(table["channels"])
    motion = np.empty((len(clips), channels, size, size), np.float32)
    for i, file in enumerate(tqdm(clips.frames.str[0], desc="precomputed", unit="clip")):
        motion[i] = load_input(file, size, channels)
    provenance = {"dataset": ingested["dataset"], "protocol": ingested["protocol"], "inputs": table}
    rows = list(zip(clips.sample_id, clips.subject, clips.label_index.astype(int), strict=True))
    write_precomputed(args.out, motion, rows, ingested["classes"], provenance)
    write_json(
        args.report,
        {
            "clips": len(clips),
            "classes": ingested["classes"],
            "depth": False,
            "per_class": {c: int((clips.label == c).sum()) for c in ingested["classes"]},
            "bytes": Path(args.out).stat().st_size,
            "inputs": {"shape": [channels, size, size], "mean": float(motion.mean()), "std": float(motion.std())},
            "lost": {},  # no face stages ran: nothing was lost between ingest and the cache
        },
    )
    print(f"precomputed: {len(clips)} clips of {channels}x{size}x{size} -> {args.out}")


if __name__ == "__main__":
    main()
