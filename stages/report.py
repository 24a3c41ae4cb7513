"""DVC stage `report`: pool every LOSO fold into metrics (dvc metrics), plots (dvc plots) and reports/README.md."""
from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.metrics import confusion_matrix

from mer import report, report_page, report_plots
from mer.folds import load_folds
from mer.io import atomic_path, load_params, read_json, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--folds", required=True)
    parser.add_argument("--upstream", nargs=3, required=True, metavar=("INGEST", "LANDMARKS", "CROP"),
                        help="the ingest, landmarks and crop stages' reports (what they skipped)")
    parser.add_argument("--out", required=True, help="folder for metrics.json, the plots and README.md")
    args = parser.parse_args()

    params = load_params(args.params)
    out = Path(args.out)
    folds = load_folds(args.folds, params["dataset"]["subjects"])
    upstream = [read_json(path) for path in args.upstream]
    metrics = report.evaluate(folds, report.skipped(*upstream))
    write_json(out / "metrics.json", metrics)

    table = folds.predictions
    named = table.assign(actual=[folds.classes[i] for i in table.label],
                         predicted=[folds.classes[i] for i in table.pred])
    with atomic_path(out / "predictions.csv", ".csv") as tmp:
        named.to_csv(tmp, index=False, float_format="%.6f")
    curves = report.curves_table(folds)
    with atomic_path(out / "curves.csv", ".csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.6f")

    matrix = confusion_matrix(table.label, table.pred, labels=range(len(folds.classes)))
    report_plots.confusion(out / "confusion.png", matrix, folds.classes, "pooled LOSO")
    report_plots.subject_bars(out / "subjects.png", metrics["per_subject"], metrics["accuracy"])
    report_plots.training_curves(out / "curves.png", curves)
    with atomic_path(out / "README.md", ".md") as tmp:
        tmp.write_text(report_page.render(metrics, params, report_page.code_version(), report.skip_reasons(*upstream),
                                          report.trained_on(folds)))
    print(f"report: {metrics['clips']} clips, {metrics['folds']} folds: accuracy {metrics['accuracy']:.4f}, "
          f"UF1 {metrics['uf1']:.4f}, UAR {metrics['uar']:.4f} (optimistic best-epoch accuracy "
          f"{metrics['optimistic_best_epoch']['accuracy']:.4f}) -> {out / 'README.md'}")


if __name__ == "__main__":
    main()
