"""DVC stage `crop`: eye-based 224x224 crops of each clip's onset and apex windows, into one HDF5 file
(mer/face/crop_store.py); reports/crop.png shows a few clips of each class and the clips whose warp folds most."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections import Counter

import cv2
import numpy as np

from mer import failures
from mer.datasets import manifest_store
from mer.face import normalised_store
from mer.face.crop import Cropped, CropSettings, CropTask, crop_clip, crop_maps, crop_tasks, folds
from mer.face.crop_store import CropsWriter
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent
from mer.parallel import map_clips
from mer.plots import image_grid

WORST = 5  # clips with the largest folded fraction, listed in the report
WORST_SHOWN = 3  # ... and drawn on the sheet
FOLD_TINT = np.array([255, 0, 0])  # folded pixels on the sheet's last column


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--normalised", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--sheet", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    p, pre = params["crop"], params["preprocess"]
    clips = manifest_store.read(args.manifest).set_index("sample_id", drop=False)
    norm = normalised_store.read(args.normalised)
    tasks = crop_tasks(clips, norm)
    done: list[Cropped] = []
    failed: list[failures.ClipFailure] = []
    settings = CropSettings.from_params(p)
    work = functools.partial(crop_clip, settings=settings)
    try:
        with CropsWriter(args.out, settings) as writer:
            for result in map_clips(work, tasks, workers=pre["workers"], desc="crop"):
                if isinstance(result, Cropped):
                    writer.add(result)
                    done.append(_without_frames(result))
                else:
                    failed.append(result)
            failures.check(failed, pre["on_error"], "crop")
            _sheet(args.sheet, writer, done, clips, params["previews"]["crop_per_class"], tasks, settings)
    except failures.ClipError as exc:
        sys.exit(str(exc))
    write_json(
        args.report,
        {
            "clips": len(tasks),
            "cropped": len(done),
            "size": p["size"],
            "frames_written": sum(len(c.numbers) for c in done),
            **warp_summary(done),
            **failures.summary(failed),
        },
    )
    print(f"crop: {len(done)} of {len(tasks)} clips cropped to {p['size']}x{p['size']}, {len(failed)} failed")


def warp_summary(done: list[Cropped]) -> dict:
    """Per clip and over all: the crop pixels the LWM fallback maps, and those where the warp folds over."""
    uncovered, folded = [c.uncovered for c in done], [c.folded for c in done]
    worst = sorted(done, key=lambda c: -c.folded)[:WORST]
    return {
        "uncovered_fraction": _spread(uncovered),
        "folded_fraction": {
            **_spread(folded),
            "clips_with_folds": sum(f > 0 for f in folded),
            "worst": [{"sample_id": c.sample_id, "folded_fraction": c.folded} for c in worst if c.folded > 0],
        },
        "per_clip": {c.sample_id: {"uncovered_fraction": c.uncovered, "folded_fraction": c.folded} for c in done},
    }


def _spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)) if values else None, "max": float(np.max(values)) if values else None}


def _without_frames(clip: Cropped) -> Cropped:
    """The clip's record once its frames are in the file (the stage keeps no crops in memory)."""
    return dataclasses.replace(clip, rgb=clip.rgb[:0], depth=None if clip.depth is None else clip.depth[:0])


def _sheet(
    path: str, crops: CropsWriter, done: list[Cropped], clips, per_class: int, tasks: list[CropTask], s: CropSettings
) -> None:
    """Onset, apex, |apex - onset| (contrast x4) and the onset with its folded pixels in red, for a few clips
    of each class across subjects, then the clips whose warp folds most."""
    by_id = {t.sample_id: t for t in tasks}
    worst = [c for c in sorted(done, key=lambda c: -c.folded)[:WORST_SHOWN] if c.folded > 0]
    rows, titles = [], []
    for c, heading in [(c, clips.at[c.sample_id, "label"]) for c in sheet_clips(done, clips, per_class)] + [
        (c, f"worst fold #{k}") for k, c in enumerate(worst, start=1)
    ]:
        onset = crops.frame(c.sample_id, clips.at[c.sample_id, "onset"])
        apex = crops.frame(c.sample_id, clips.at[c.sample_id, "apex"])
        diff = np.clip(4 * np.abs(apex.astype(np.int16) - onset.astype(np.int16)), 0, 255).astype(np.uint8)
        task = by_id[c.sample_id]
        map_x, map_y, _ = crop_maps(task.transform, task.landmarks, s)
        tinted = onset.copy()
        tinted[folds(map_x, map_y)] = FOLD_TINT
        rows.append([onset, apex, cv2.cvtColor(diff, cv2.COLOR_RGB2GRAY), tinted])
        folded = f"\nfolded {round(c.folded * s.size**2)} px ({c.folded:.1%})" if c.folded else ""
        titles.append(f"{heading}\n{c.sample_id}{folded}")
    image_grid(path, rows, titles, ["onset", "apex", "|apex - onset| x4", "folded pixels (red)"])


def sheet_clips(done: list[Cropped], clips, per_class: int) -> list[Cropped]:
    """Up to `per_class` clips of each class, each time from the subject shown least so far (the first
    clips of a manifest are all one subject's)."""
    by_label: dict[str, list[Cropped]] = {}
    for c in done:
        by_label.setdefault(clips.at[c.sample_id, "label"], []).append(c)
    chosen: list[Cropped] = []
    shown: Counter[str] = Counter()
    for group in by_label.values():
        for _ in range(min(per_class, len(group))):
            pick = min(group, key=lambda c: shown[clips.at[c.sample_id, "subject"]])
            group.remove(pick)
            shown[clips.at[pick.sample_id, "subject"]] += 1
            chosen.append(pick)
    return chosen


if __name__ == "__main__":
    main()
