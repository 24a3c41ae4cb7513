"""DVC stage `train@<subject>-<seed>`: one LOSO fold of one training seed, from the HDF5 cache.

Reads the params blocks `input`, `model` and `train` but `train.seeds` (dvc.yaml passes each seed as --seed;
without --seed the first of `train.seeds` is trained). Writes models/seed<seed>/<subject>.pt (state dict) and, in
reports/folds/seed<seed>/<subject>/, predictions.csv, curves.json and live/ (DVCLive's files, written each epoch).
"""
from __future__ import annotations

import argparse

from mer.cache import Cache
from mer.fold_seed import fold_config, seed_folder, seeds_of
from mer.io import load_params
from mer.lifecycle import exit_with_parent
from mer.live import epoch_logger
from mer.train import InputConfig, train_fold, write_fold


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True, help="the left-out (test) subject, e.g. sub01")
    parser.add_argument("--seed", type=int, help="the training seed (dvc.yaml passes each of train.seeds); "
                        "default: the first of train.seeds")
    parser.add_argument("--params", default="params.yaml", help="any YAML with `input`, `model`, `train` blocks")
    parser.add_argument("--cache", default="data/cache.h5")
    parser.add_argument("--flow", default="data/flow.h5", help="the flow stage's file (input kind `flow`)")
    parser.add_argument("--models", default="models")
    parser.add_argument("--reports", default="reports/folds")
    args = parser.parse_args()

    params = load_params(args.params)
    seed = seeds_of(params["train"])[0] if args.seed is None else args.seed
    config = fold_config(params["train"], seed)
    folder = seed_folder(args.reports, seed) / args.subject
    with epoch_logger(folder / "live") as on_epoch:
        result = train_fold(Cache(args.cache), args.subject, params["model"]["name"],
                            params["model"].get("options") or {}, InputConfig(**params["input"]), config,
                            flow=args.flow, on_epoch=on_epoch)
    write_fold(result, seed_folder(args.models, seed) / f"{args.subject}.pt", folder / "predictions.csv",
               folder / "curves.json")
    accuracy = (result.predictions.label == result.predictions.pred).mean()
    print(f"{args.subject} seed {seed}: accuracy {accuracy:.3f} at epoch {result.curves['selected_epoch']} "
          f"({result.curves['selection']}) on {len(result.predictions)} clips")


if __name__ == "__main__":
    main()
