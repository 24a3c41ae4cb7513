"""DVC stage `cache`: pack the cropped onset/apex windows, labels and subjects into one HDF5 file."""
from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from mer.cache import CacheWriter
from mer.datasets import manifest
from mer.datasets.protocols import Protocol
from mer.face.crop import read_windows
from mer.io import load_params, read_json, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", default="data/manifest.csv")
    parser.add_argument("--cropped", default="data/cropped")
    parser.add_argument("--out", default="data/cache.h5")
    parser.add_argument("--report", default="reports/cache.json")
    args = parser.parse_args()

    params = load_params(args.params)
    cropped = Path(args.cropped)
    index = read_json(cropped / "index.json")
    clips = manifest.read(args.manifest).set_index("sample_id", drop=False)
    classes = list(Protocol.from_params(params["dataset"]["protocol"], params["protocols"]).classes)
    depth = any(entry["depth"] for entry in index.values())
    writer = CacheWriter.from_params(args.out, len(index), classes, depth, params)
    for sample_id, entry in tqdm(index.items(), desc="cache", unit="clip"):
        writer.add(read_windows(cropped / sample_id, clips.loc[sample_id], entry["onset_window"],
                                entry["apex_window"], depth))
    writer.close()
    labels = [clips.at[s, "label"] for s in index]
    write_json(args.report, {"clips": len(index), "classes": classes, "depth": depth,
                             "per_class": {c: labels.count(c) for c in classes},
                             "bytes": Path(args.out).stat().st_size})
    print(f"cache: {len(index)} clips -> {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
