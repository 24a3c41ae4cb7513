"""DVC stage `attention`: MMNet's CA maps, each clip seen by its own LOSO fold model of the first seed.

A few clips per class (`previews.attention_per_class`) show their onset with each CA block's map
overlaid; the last rows show each class's mean map on the template face (reports/attention.png). For
the synthetic set, the report (reports/attention.json) also counts how often a clip's mean map peaks
inside the region the generator moved, against the chance of that. A model without CA maps (the
ResNets) gets a figure and report that say so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mer import attention
from mer.cache_store import Cache
from mer.face import normalised_store
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent
from mer.models import MMNet
from mer.training import fold_model, inputs
from mer.training.device import choose


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cache", required=True)
    parser.add_argument(
        "--motion", required=True, help="input.file: the flow stage's file for kind `flow`, else the cache"
    )
    parser.add_argument("--normalised", required=True, help="each clip's landmarks in template space")
    parser.add_argument("--models", required=True, help="one seed's fold models, <models>/<subject>.pt")
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    model_p, kind, size = params["model"], params["input"]["kind"], params["input"]["size"]
    if model_p["name"] != "mmnet":
        _without_maps(args, model_p["name"])
        return
    device = choose("fp32", params["train"]["threads"])  # the maps in fp32, on the folds' thread count
    print(f"attention: {device}")
    cache = Cache(args.cache)
    norm = normalised_store.read(args.normalised)
    landmarks = norm.landmarks[[norm.index()[s] for s in cache.sample_ids]]
    maps: list[list[np.ndarray]] = [[] for _ in attention.BLOCKS]
    order: list[int] = []
    onsets: list[np.ndarray] = []
    for subject in dict.fromkeys(cache.subjects):
        _, test_idx = cache.fold(subject)
        batch = inputs.select(inputs.load_fold(cache, test_idx, kind, size, args.motion), torch.arange(len(test_idx)))
        path = Path(args.models) / f"{subject}.pt"
        try:
            model = fold_model.load(path, model_p["name"], model_p.get("options") or {}, cache.classes, kind, size)
        except fold_model.ModelFileError as exc:
            sys.exit(f"attention: the fold model of {subject}: {exc}")
        assert isinstance(model, MMNet)
        on = device.device
        _, found = attention.attention_maps(model.to(on), inputs.motion(batch, kind).to(on), batch.onset.to(on))
        for block, part in zip(maps, found, strict=True):
            block.append(part)
        order.extend(test_idx.tolist())
        onsets.append((batch.onset.permute(0, 2, 3, 1) * 255).round().byte().numpy())
    clips = np.array(order)
    blocks = [np.concatenate(b) for b in maps]
    mean = attention.mean_map(blocks, size)
    labels, onset = cache.labels[clips], np.concatenate(onsets)
    means = attention.class_means(mean, labels, len(cache.classes))
    face = onset.mean(axis=0).round().astype(np.uint8)  # every crop is in the template's frame
    points = attention.to_input_pixels(norm.template.landmarks, norm.template.landmarks, params["crop"], size)

    shown = _shown(labels, len(cache.classes), params["previews"]["attention_per_class"])
    rows = [
        (
            f"{cache.classes[labels[i]]}\n{cache.sample_ids[clips[i]]}",
            onset[i],
            [attention.upsample(b[i : i + 1], size)[0] for b in blocks],
            mean[i],
        )
        for i in shown
    ]
    attention.figure(args.out, rows, face, means, cache.classes, [b.shape[-1] for b in blocks], points)
    report = {
        "model": model_p["name"],
        "input_size": size,
        "clips": len(clips),
        "map_sizes": {name: int(b.shape[-1]) for name, b in zip(attention.BLOCKS, blocks, strict=True)},
        "shown": [cache.sample_ids[clips[i]] for i in shown],
    }
    if params["dataset"]["name"] == "synthetic":
        report["peak_in_moving_region"] = _peak_check(
            mean, labels, landmarks[clips], cache.classes, params["crop"], size
        )
    write_json(args.report, report)
    print(
        f"attention: CA maps of {len(clips)} clips ({', '.join(str(v) for v in report['map_sizes'].values())} px) "
        f"-> {args.out}"
    )


def _shown(labels: np.ndarray, num_classes: int, per_class: int) -> list[int]:
    """The first `per_class` clips of each class, class by class."""
    return [i for c in range(num_classes) for i in np.flatnonzero(labels == c)[:per_class]]


def _peak_check(
    mean: np.ndarray, labels: np.ndarray, landmarks: np.ndarray, classes: list[str], crop: dict, size: int
) -> dict:
    """How many clips' mean maps peak inside their moving region, and how many would by chance (its area)."""
    regions = np.stack(
        [
            attention.synthetic_region(points, classes[label], crop, size)
            for points, label in zip(landmarks, labels, strict=True)
        ]
    )
    at = attention.peaks(mean)
    hits = regions[np.arange(len(regions)), at[:, 0], at[:, 1]]
    return {
        "clips": len(hits),
        "hits": int(hits.sum()),
        "expected_by_chance": float(regions.mean(axis=(1, 2)).sum()),
        "region": "within 0.5 eye distances of the landmarks the synthetic generator moves for the class",
    }


def _without_maps(args: argparse.Namespace, name: str) -> None:
    import matplotlib.pyplot as plt

    from mer.plots import save

    message = f"model {name!r} has no continuous-attention maps (only MMNet's CA blocks make them)"
    fig, ax = plt.subplots(figsize=(6, 1))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    save(fig, args.out)
    write_json(args.report, {"model": name, "maps": None, "note": message})
    print(f"attention: {message}")


if __name__ == "__main__":
    main()
