"""DVC stage `report`: pool every LOSO fold of every seed into metrics (dvc metrics), plots (dvc plots) and
reports/README.md; each figure is summarised over `train.seeds` (mean, std, min-max)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.metrics import confusion_matrix

from mer.fold_store import seeds_of
from mer.io import atomic_path, load_params, read_json, write_json
from mer.lifecycle import exit_with_parent
from mer.provenance import git_commit
from mer.report import figures, readme, scores, seeds


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--folds", required=True)
    parser.add_argument(
        "--upstream",
        nargs=2,
        required=True,
        metavar=("INGEST", "CACHE"),
        help="the ingest and cache reports (what was lost on the way: the cache report carries the face stages')",
    )
    parser.add_argument("--out", required=True, help="folder for metrics.json, the plots and README.md")
    args = parser.parse_args()

    params = load_params(args.params)
    out = Path(args.out)
    runs = seeds.load_runs(args.folds, seeds_of(params["train"]), params["dataset"]["subjects"])
    upstream = [read_json(path) for path in args.upstream]
    parts = list(upstream[0].get("per_dataset") or {})  # a composite's data sets, scored apart too
    metrics = seeds.evaluate(runs, scores.skipped(*upstream), parts)
    write_json(out / "metrics.json", metrics)

    folds = seeds.pooled(runs)
    table = folds.predictions
    named = table.assign(
        actual=[folds.classes[i] for i in table.label], predicted=[folds.classes[i] for i in table.pred]
    )
    with atomic_path(out / "predictions.csv", ".csv") as tmp:
        named.to_csv(tmp, index=False, float_format="%.6f")
    curves = scores.curves_table(folds)
    with atomic_path(out / "curves.csv", ".csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.6f")

    matrix = confusion_matrix(table.label, table.pred, labels=range(len(folds.classes)))
    figures.confusion(out / "confusion.png", matrix, folds.classes, f"pooled LOSO, {len(runs)} seed(s)")
    mean_subjects = {
        name: {"accuracy": s["accuracy"]["mean"], "clips": s["clips"]} for name, s in metrics["per_subject"].items()
    }
    figures.subject_bars(out / "subjects.png", mean_subjects, metrics["accuracy"]["mean"])
    figures.training_curves(out / "curves.png", curves)
    figures.per_seed(out / "seeds.png", metrics["per_seed"])
    with atomic_path(out / "README.md", ".md") as tmp:
        tmp.write_text(
            readme.render(
                metrics,
                params,
                git_commit(),
                scores.skip_reasons(*upstream),
                scores.trained_on(folds),
                upstream[0],
                seeds.diverged(runs),
            )
        )
    honest, paper = metrics, metrics["paper_protocol"]
    print(
        f"report: {metrics['clips']} clips, {metrics['folds']} folds, {len(runs)} seed(s): "
        + ", ".join(
            f"{name} {honest[key]['mean']:.4f}"
            for key, name in (("accuracy", "accuracy"), ("uf1", "UF1"), ("uar", "UAR"))
        )
        + f" (paper protocol, optimistic: accuracy {paper['accuracy']['mean']:.4f}, UF1 {paper['uf1']['mean']:.4f})"
        + "".join(
            f"; {name}: UF1 {s['uf1']['mean']:.4f}, UAR {s['uar']['mean']:.4f}"
            for name, s in metrics.get("per_dataset", {}).items()
        )
        + f" -> {out / 'README.md'}"
    )


if __name__ == "__main__":
    main()
