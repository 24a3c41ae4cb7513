"""DVC stage `train@<subject>-<seed>`: one LOSO fold of one training seed, from the HDF5 cache.

Reads the params blocks `input`, `model` and `train` but `train.seeds` (dvc.yaml passes each seed as --seed;
without --seed the first of `train.seeds` is trained). Writes <models>/seed<seed>/<subject>.pt (state dict) and,
in <reports>/seed<seed>/<subject>/, predictions.csv, curves.json (schema: mer.fold_store) and live/ (DVCLive's files,
written each epoch). `--motion` is `input.file`, the file the input kind's motion comes from (a dep of the fold
in dvc.yaml): the cache itself for difference, depth and rgbd, the flow stage's file for flow, so a fold depends
on data/flow.h5 only when its input kind uses flow.

`--subject all` (the optional stage `final@all`) trains the final model on every subject with the same schedule:
<models>/all.pt and <reports>/all/ (no seed folder: there is one final model), not evaluated (no test clips).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mer import fold_store
from mer.cache_store import Cache
from mer.io import load_params
from mer.lifecycle import exit_with_parent
from mer.training.inputs import input_kind
from mer.training.live import epoch_logger
from mer.training.loop import FINAL, InputConfig, fold_config, train_fold


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--subject",
        required=True,
        help=f"the left-out (test) subject, e.g. sub01; `{FINAL}`: every subject (the final model, not evaluated)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="the training seed (dvc.yaml passes each of train.seeds); default: the first of train.seeds",
    )
    parser.add_argument("--params", default="params.yaml", help="any YAML with `input`, `model`, `train` blocks")
    parser.add_argument("--cache", required=True)
    parser.add_argument("--motion", help="input.file: the flow stage's file for kind `flow`, else the cache")
    parser.add_argument("--models", required=True)
    parser.add_argument("--reports", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    seed = fold_store.seeds_of(params["train"])[0] if args.seed is None else args.seed
    settings = {k: v for k, v in params["input"].items() if k != "file"}
    motion = args.motion or args.cache
    uses_flow = input_kind(settings["kind"]).reads_flow
    if uses_flow == (motion == args.cache):
        wanted = "the flow stage's file (data/flow.h5)" if uses_flow else f"the cache ({args.cache})"
        sys.exit(
            f"train: input kind {settings['kind']!r} reads its motion from {wanted}, but input.file is "
            f"{motion!r}; choose the kind with its group (`-S input=flow`, conf/input/) or set input.file"
        )
    final = args.subject == FINAL
    reports = Path(args.reports) if final else fold_store.seed_folder(args.reports, seed)
    with epoch_logger(reports / args.subject / "live") as on_epoch:
        result = train_fold(
            Cache(args.cache),
            args.subject,
            params["model"]["name"],
            params["model"].get("options") or {},
            InputConfig(**settings),
            fold_config(params["train"], seed),
            flow=motion if uses_flow else None,
            on_epoch=on_epoch,
        )
    fold_store.write(
        Path(args.models) if final else fold_store.seed_folder(args.models, seed),
        reports,
        args.subject,
        result.state_dict,
        result.predictions,
        result.curves,
    )
    if final:
        print(f"{FINAL} seed {seed}: final model on {len(result.curves['train_samples'])} clips, not evaluated")
        return
    accuracy = (result.predictions.label == result.predictions.pred).mean()
    print(
        f"{args.subject} seed {seed}: accuracy {accuracy:.3f} at epoch {result.curves['selected_epoch']} "
        f"({result.curves['selection']}) on {len(result.predictions)} clips"
    )


if __name__ == "__main__":
    main()
