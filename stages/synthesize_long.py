"""DVC stage `synthesize_long`: write the synthetic long recordings that the `spot` stage is measured on."""

from __future__ import annotations

import argparse
import time

from mer.datasets.long_recordings import LongConfig, generate
from mer.face.landmarks import DlibDetector
from mer.io import atomic_dir, load_params, write_json
from mer.lifecycle import exit_with_parent


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    config = LongConfig.from_params(load_params(args.params)["synthesize_long"])
    started = time.perf_counter()
    with atomic_dir(args.out) as tmp:
        meta = generate(tmp, config, DlibDetector(upsample=1))
        write_json(tmp / "synthetic_long.json", meta)
    seconds = time.perf_counter() - started
    print(
        f"synthesize_long: {config.recordings} recordings of {config.seconds:g} s at {config.fps:g} fps in "
        f"{seconds:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
