"""DVC stage `flow`: TV-L1 optical flow onset -> apex of every cached clip (for input kind `flow`)."""

from __future__ import annotations

import argparse

import numpy as np

from mer import flow
from mer.cache_store import Cache
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    cache = Cache(args.cache)
    size = params["flow"]["size"]
    magnitude = flow.compute_flows(cache, args.out, size, workers=params["preprocess"]["workers"])
    per_class = {
        name: float(magnitude[cache.labels == c].mean()) if (cache.labels == c).any() else None
        for c, name in enumerate(cache.classes)
    }
    write_json(
        args.report,
        {
            "clips": len(cache),
            "size": size,
            "mean_magnitude_px": float(np.mean(magnitude)),
            "mean_magnitude_px_per_class": per_class,
        },
    )
    print(f"flow: {len(cache)} clips at {size} px -> {args.out} (mean magnitude {np.mean(magnitude):.3f} px)")


if __name__ == "__main__":
    main()
