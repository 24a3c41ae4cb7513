"""DVC stage `cache`: pack the cropped onset/apex windows, labels and subjects into one HDF5 file."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mer.cache import CacheWriter, ClipWindows
from mer.datasets import manifest
from mer.images import read_depth, read_rgb
from mer.io import load_params, read_json, write_json


def main() -> None:
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
    classes = list(params["protocols"][params["dataset"]["protocol"]]["classes"])
    depth = any(entry["depth"] for entry in index.values())
    recorded = {"dataset": params["dataset"], "crop": params["crop"], "normalise": params["normalise"],
                "landmarks": params["landmarks"]}
    writer = CacheWriter(args.out, len(index), params["crop"]["window"], params["crop"]["size"], classes,
                         depth, recorded)
    for sample_id, entry in tqdm(index.items(), desc="cache", unit="clip"):
        row = clips.loc[sample_id]
        folder = cropped / sample_id
        windows = {name: entry[f"{name}_window"] for name in ("onset", "apex")}
        writer.add(ClipWindows(
            sample_id=sample_id, subject=row.subject, label=int(row.label_index),
            onset=np.stack([read_rgb(folder / f"img{n}.png") for n in windows["onset"]]),
            apex=np.stack([read_rgb(folder / f"img{n}.png") for n in windows["apex"]]),
            onset_position=windows["onset"].index(int(row.onset)), apex_position=windows["apex"].index(int(row.apex)),
            onset_frames=windows["onset"], apex_frames=windows["apex"],
            depth_onset=np.stack([read_depth(folder / f"depth{n}.png") for n in windows["onset"]]) if depth else None,
            depth_apex=np.stack([read_depth(folder / f"depth{n}.png") for n in windows["apex"]]) if depth else None))
    writer.close()
    labels = [clips.at[s, "label"] for s in index]
    write_json(args.report, {"clips": len(index), "classes": classes, "depth": depth,
                             "per_class": {c: labels.count(c) for c in classes},
                             "bytes": Path(args.out).stat().st_size})
    print(f"cache: {len(index)} clips -> {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
