"""DVC stage `train@<subject>`: one LOSO fold from the HDF5 cache.

Reads the params blocks `input`, `model` and `train`; writes models/<subject>.pt (state dict),
reports/folds/<subject>/predictions.csv and reports/folds/<subject>/curves.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mer.cache import Cache
from mer.io import load_params
from mer.lifecycle import exit_with_parent
from mer.train import InputConfig, TrainConfig, train_fold, write_fold


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True, help="the left-out (test) subject, e.g. sub01")
    parser.add_argument("--params", default="params.yaml", help="any YAML with `input`, `model`, `train` blocks")
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument("--flow", default="data/flow.h5", help="the flow stage's file (input kind `flow`)")
    parser.add_argument("--models", default="models")
    parser.add_argument("--reports", default="reports/folds")
    args = parser.parse_args()

    params = load_params(args.params)
    result = train_fold(Cache(args.cache), args.subject, params["model"]["name"], params["model"].get("options") or {},
                        InputConfig(**params["input"]), TrainConfig.from_params(params["train"]), flow=args.flow)
    folder = Path(args.reports) / args.subject
    write_fold(result, Path(args.models) / f"{args.subject}.pt", folder / "predictions.csv", folder / "curves.json")
    accuracy = (result.predictions.label == result.predictions.pred).mean()
    print(f"{args.subject}: accuracy {accuracy:.3f} at epoch {result.curves['selected_epoch']} "
          f"({result.curves['selection']}) on {len(result.predictions)} clips")


if __name__ == "__main__":
    main()
