"""reports/README.md: the LOSO result as a page a researcher reads, beside the published numbers."""
from __future__ import annotations

import subprocess
from typing import Any

from mer.report import OPTIMISTIC_NOTE, PUBLISHED


def code_version() -> str:
    """The git commit the run came from, marked when the working tree had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if dirty else commit


def render(metrics: dict[str, Any], params: dict[str, Any], version: str, reasons: dict[str, int],
           trained_on: str) -> str:
    """Markdown: provenance, honest and optimistic scores, published figures, per-class/subject tables, plots."""
    dataset, model, inputs, train = params["dataset"], params["model"], params["input"], params["train"]
    selection = ("final epoch" if not train.get("validation_subjects")
                 else f"epoch chosen on {train['validation_subjects']} held-out training subject(s)")
    lines = [
        "# LOSO evaluation",
        "",
        f"- data set **{dataset['name']}** ({dataset['format']} layout), protocol **{dataset['protocol']}**, "
        f"{metrics['clips']} clips in {metrics['folds']} leave-one-subject-out folds",
        f"- model **{model['name']}** {model.get('options') or {}}, input **{inputs['kind']}** at {inputs['size']} px",
        f"- {train['epochs']} epochs, batch {train['batch_size']}, lr {train['lr']}, weight decay "
        f"{train['weight_decay']}, class weights {train['class_weights']}, seed {train['seed']}; model kept: "
        f"{selection}",
        f"- trained on {trained_on}",
        f"- code: {version}",
        "",
        "## Pooled over all folds",
        "",
        "| | accuracy | UF1 | UAR | weighted F1 |",
        "|---|---:|---:|---:|---:|",
        _row("**this run** (honest)", metrics),
        _row("optimistic: best epoch per test subject", metrics["optimistic_best_epoch"]),
        "",
        f"Second row: {OPTIMISTIC_NOTE}. Papers that follow the official code report that kind of figure; "
        "the gap between the rows is how much choosing the epoch on the test subject adds.",
        "",
    ]
    lines += _published(dataset["protocol"])
    lines += ["## Per class", "", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
              for name, c in metrics["per_class"].items()]
    lines += ["", "![confusion matrices](confusion.png)", "", "## Per subject", "",
              "| subject | accuracy | clips |", "|---|---:|---:|"]
    lines += [f"| {name} | {s['accuracy']:.3f} | {s['clips']} |" for name, s in metrics["per_subject"].items()]
    lines += ["", "![per-subject accuracy](subjects.png)", "", "## Training curves", "",
              "![training curves](curves.png)", ""]
    lines += _skipped(metrics["skipped"], reasons)
    return "\n".join(lines)


def _row(name: str, scores: dict[str, float]) -> str:
    return (f"| {name} | {scores['accuracy']:.4f} | {scores['uf1']:.4f} | {scores['uar']:.4f} | "
            f"{scores['weighted_f1']:.4f} |")


def _published(protocol: str) -> list[str]:
    if protocol not in PUBLISHED:
        return [f"No published figure for protocol `{protocol}` (method.md section 6 lists CASME II 3- and "
                "5-class, MMEW 4-class and CAS(ME)^3 4-class).", ""]
    lines = ["## Published (method.md section 6)", "", "| source | accuracy % | F1 |", "|---|---:|---:|"]
    lines += [f"| {source} | {accuracy:.2f} | {f1:.4f} |" for source, (accuracy, f1) in PUBLISHED[protocol].items()]
    return lines + ["", "Published F1 is the pooled macro F1 (UF1 above). The official code, which the "
                        "reproduction report ran, keeps each test subject's best epoch, so the published rows "
                        "compare with the optimistic row more than with the honest one.", ""]


def _skipped(skipped: dict[str, int], reasons: dict[str, int]) -> list[str]:
    lines = ["## Clips not evaluated", "",
             f"{skipped['total']} clip(s) failed upstream (ingest rejected {skipped['ingest_rejected']}, landmarks "
             f"{skipped['landmarks_failed']}, crop {skipped['crop_failed']}); "
             f"{skipped['dropped_by_protocol']} clip(s) had labels outside the protocol."]
    lines += [f"- {reason}: {n}" for reason, n in reasons.items()]
    return lines + [""]
