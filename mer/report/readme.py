"""reports/README.md: the LOSO result as a page a researcher reads, beside the published numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mer.report import paper_protocol
from mer.report.scores import OPTIMISTIC_NOTE, PUBLISHED, PUBLISHED_UF1_UAR


def render(
    metrics: dict[str, Any],
    params: dict[str, Any],
    version: str,
    reasons: dict[str, int],
    trained_on: str,
    ingest: dict[str, Any] | None = None,
    diverged: Sequence[dict[str, Any]] = (),
) -> str:
    """Markdown: provenance (with the data ingest read, from reports/ingest.json), the folds that diverged
    (mer.report.seeds.diverged), honest and optimistic scores over seeds, published figures, per-seed/class/subject
    (and per data set of a composite) tables, plots."""
    dataset, model, inputs, train = params["dataset"], params["model"], params["input"], params["train"]
    by_dataset = dataset.get("folds") == "dataset"
    folds = (
        f"cross-data-set folds (each tests on one data set, trained on the others: {', '.join(dataset['subjects'])})"
        if by_dataset
        else "leave-one-subject-out folds"
    )
    selection = (
        "final epoch"
        if not train.get("validation_subjects")
        else f"epoch chosen on {train['validation_subjects']} held-out training subject(s)"
    )
    n = metrics["seeds"]
    spread = (
        f"mean ± sample std over {n} seeds (min-max)"
        if n > 1
        else "one seed, so no spread: std not reported (list more in `train.seeds`)"
    )
    lines = [
        "# LOSO evaluation",
        "",
        f"- data set **{dataset['name']}** ({dataset['format']} layout), protocol **{dataset['protocol']}**, "
        f"{metrics['clips']} clips in {metrics['folds']} {folds}, each trained with "
        f"{n} seed(s)",
        f"- model **{model['name']}** {model.get('options') or {}}, input **{inputs['kind']}** at {inputs['size']} px",
        f"- {train['epochs']} epochs, batch {train['batch_size']}, lr {train['lr']}, weight decay "
        f"{train['weight_decay']}, class weights {train['class_weights']}, seeds {train['seeds']}; model kept: "
        f"{selection}",
        f"- trained on {trained_on}",
        *([f'- **{len(diverged)} fold run(s) diverged**: see "Diverged folds" below'] if diverged else []),
        f"- code: {version}",
        "",
        f"## Pooled over all folds: {spread}",
        "",
        "| | accuracy | UF1 | UAR | weighted F1 |",
        "|---|---:|---:|---:|---:|",
        _row(f"**honest**: {selection}", metrics),
        _row("optimistic: best-accuracy epoch per test subject", metrics["optimistic_best_epoch"]),
        _row("**paper protocol** (optimistic): official MMNet code", metrics["paper_protocol"]),
        "",
        f"The rows differ only in which epoch each test subject's predictions come from: the honest row takes the "
        f"{selection}, chosen without looking at the test subject, the other two choose it on that subject's own "
        "test clips (the paper protocol even takes accuracy and F1 from separately chosen epochs), which can only "
        "raise the figure.",
        "",
        f"- Second row: {OPTIMISTIC_NOTE}.",
        f"- Third row: {paper_protocol.NOTE}. Papers that follow the official code report this figure.",
        "",
    ]
    lines += _diverged(diverged)
    lines += data_lines(ingest) if ingest else []
    lines += _published_uf1_uar(metrics, dataset["protocol"], model["name"], spread)
    if dataset["protocol"] not in PUBLISHED_UF1_UAR:
        lines += _published(dataset["protocol"])
    lines += _per_dataset(metrics.get("per_dataset"), spread)
    lines += _per_seed(metrics["per_seed"])
    lines += [
        f"## Per class ({spread})",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {_stat(c['precision'])} | {_stat(c['recall'])} | {_stat(c['f1'])} | {c['support']} |"
        for name, c in metrics["per_class"].items()
    ]
    lines += [
        "",
        "![confusion matrices](confusion.png)",
        "",
        f"## Per subject ({spread})",
        "",
        "| subject | accuracy | clips |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {_stat(s['accuracy'])} | {s['clips']} |" for name, s in metrics["per_subject"].items()]
    lines += [
        "",
        "![per-subject accuracy, mean over seeds](subjects.png)",
        "",
        "## Training curves",
        "",
        "![training curves](curves.png)",
        "",
    ]
    lines += _skipped(metrics["skipped"], reasons)
    return "\n".join(lines)


def _stat(summary: dict[str, float]) -> str:
    """`0.8542 ± 0.0451 (0.8125-0.9000)`, or the one value when there is no spread (one seed)."""
    if "std" not in summary:
        return f"{summary['mean']:.4f}"
    return f"{summary['mean']:.4f} ± {summary['std']:.4f} ({summary['min']:.4f}-{summary['max']:.4f})"


def _row(name: str, scores: dict[str, dict[str, float]]) -> str:
    keys = ("accuracy", "uf1", "uar", "weighted_f1")
    cells = [_stat(scores[key]) if key in scores else "not reported" for key in keys]
    return f"| {name} | " + " | ".join(cells) + " |"


def _per_seed(per_seed: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## Per seed",
        "",
        "| seed | accuracy | UF1 | UAR | weighted F1 | best-accuracy epoch: accuracy | "
        "paper protocol: accuracy | paper protocol: UF1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seed, m in per_seed.items():
        best, paper = m["optimistic_best_epoch"], m["paper_protocol"]
        lines.append(
            f"| {seed} | {m['accuracy']:.4f} | {m['uf1']:.4f} | {m['uar']:.4f} | {m['weighted_f1']:.4f} | "
            f"{best['accuracy']:.4f} | {paper['accuracy']:.4f} | {paper['uf1']:.4f} |"
        )
    return lines + ["", "![per-seed figures](seeds.png)", ""]


def _diverged(folds: Sequence[dict[str, Any]]) -> list[str]:
    """The folds whose training loss ended above its first epoch's: their predictions come from a model that did
    not learn its own training clips, so the figures above count them as they are, flagged here."""
    if not folds:
        return []
    lines = [
        f"## Diverged folds: {len(folds)}",
        "",
        'Final training loss above the first epoch\'s (README, "A diverging fold"); their test predictions are in '
        "the figures above as they are.",
        "",
        "| seed | subject | first-epoch training loss | final training loss |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {f['seed']} | {f['subject']} | {f['first_train_loss']:.4g} | {f['final_train_loss']:.4g} |" for f in folds
    ]
    return [*lines, ""]


def _published(protocol: str) -> list[str]:
    if protocol not in PUBLISHED:
        return [
            f"No published figure for protocol `{protocol}` (method.md section 6 lists CASME II 3- and "
            "5-class, MMEW 4-class and CAS(ME)^3 4-class).",
            "",
        ]
    lines = ["## Published (method.md section 6)", "", "| source | accuracy % | F1 |", "|---|---:|---:|"]
    lines += [f"| {source} | {accuracy:.2f} | {f1:.4f} |" for source, (accuracy, f1) in PUBLISHED[protocol].items()]
    return lines + [
        "",
        "Published F1 is the pooled macro F1 (UF1 above). The official code, which the "
        "reproduction report ran, keeps each test subject's best epoch, so the published rows "
        "compare with the optimistic row more than with the honest one.",
        "",
    ]


def _published_uf1_uar(metrics: dict[str, Any], protocol: str, model: str, spread: str) -> list[str]:
    """Our composite UF1/UAR beside the published rows for this model (MEGC 2019), each with its protocol."""
    rows = PUBLISHED_UF1_UAR.get(protocol, {})
    if not rows:
        return []
    lines = [
        "## Beside the published figures (composite)",
        "",
        "| source | protocol | UF1 | UAR |",
        "|---|---|---:|---:|",
        f"| **this run** ({spread}) | honest: final epoch | {_stat(metrics['uf1'])} | {_stat(metrics['uar'])} |",
        f"| this run | optimistic: best epoch per test subject | {_stat(metrics['optimistic_best_epoch']['uf1'])} "
        f"| {_stat(metrics['optimistic_best_epoch']['uar'])} |",
    ]
    published = rows.get(model, [])
    lines += [
        f"| {source} | {how} | {uf1:.4f} | {'' if uar is None else f'{uar:.4f}'} |"
        for source, how, uf1, uar in published
    ]
    if not published:
        lines.append(f"| (none) | no published figure for model {model!r} under this protocol | | |")
    return lines + [
        "",
        "Published inputs differ: MEGC 2019's and HTNet's images are the organisers' flows; MEB computes its own.",
        "",
    ]


def _skipped(skipped: dict[str, int], reasons: dict[str, int]) -> list[str]:
    lines = [
        "## Clips not evaluated",
        "",
        f"{skipped['total']} clip(s) failed upstream (ingest rejected {skipped['ingest_rejected']}"
        + "".join(f", {key.removesuffix('_failed')} {n}" for key, n in skipped.items() if key.endswith("_failed"))
        + f"); {skipped['dropped_by_protocol']} clip(s) had labels outside the protocol.",
    ]
    lines += [f"- {reason}: {n}" for reason, n in reasons.items()]
    return lines + [""]


def _per_dataset(per_dataset: dict[str, dict[str, Any]] | None, spread: str) -> list[str]:
    """A composite's UF1/UAR per data set (MEGC 2019 reports these beside the composite's)."""
    if not per_dataset:
        return []
    lines = [
        f"## Per data set ({spread})",
        "",
        "| data set | UF1 | UAR | accuracy | clips |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {_stat(s['uf1'])} | {_stat(s['uar'])} | {_stat(s['accuracy'])} | {s['clips']} |"
        for name, s in per_dataset.items()
    ]
    return [*lines, ""]


def data_lines(report: dict[str, Any]) -> list[str]:
    """Markdown from reports/ingest.json: each label table read (file, release when known, SHA-256) and the
    folder its frames came from (per part, for a composite), the published sample list a composite keeps
    (every clip it left out, and why), the published corrections applied and every repaired clip by rule."""
    parts = report.get("parts") or {"": report}
    lines = ["## Data", ""]
    for name, part in parts.items():
        data = part["dataset"]
        digest = data["labels_sha256"] or "no table (labels from folders)"
        label = f"{name}: " if name else ""
        version = f" ({part['table_version']} table layout)" if part.get("table_version") else ""
        lines += [
            f"- {label}label table `{data['labels_file']}`{version}, SHA-256 `{digest}`",
            f"- {label}frames from `{part['data_root']}`",
        ]
    listed = report.get("samples")
    if listed:
        lines.append(
            f"- sample list `{listed['name']}` ({listed['source']}), SHA-256 `{listed['sha256']}`: "
            f"{report['clips']} of its {listed['clips']} clips kept, {len(listed['left_out'])} clip(s) of the "
            f"tables left out, {len(listed['faults'])} listed clip(s) missing or labelled otherwise"
        )
        lines += [f"  - left out {c['sample_id']} ({c['label']}): {c['reason']}" for c in listed["left_out"]]
        lines += [f"  - skipped {c['sample_id']}: {c['reason']}" for c in listed["faults"]]
    applied = [e for e in report["errata"] if e["applied"]]
    missed = [e for e in report["errata"] if not e["applied"]]
    errata = f"- {len(applied)} published correction(s) applied"
    if missed:
        errata += f", {len(missed)} not matching the table: " + "; ".join(
            f"row {e['row']} ({e['not_applied']})" for e in missed
        )
    lines.append(errata)
    lines += [f"- {rule}: {len(ids)} clip(s): {', '.join(ids)}" for rule, ids in report["repaired"].items() if ids]
    return [*lines, ""]
