"""DVC stage `landmarks`: 68-point landmarks of each clip's first frame, and the template face."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from mer import failures
from mer.datasets import manifest
from mer.face import store
from mer.face.detect import ClipLandmarks, detect_clip, init_worker
from mer.face.template import mean_template
from mer.io import load_params, write_json
from mer.parallel import map_clips
from mer.plots import landmark_sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", default="data/manifest.csv")
    parser.add_argument("--out", default="data/landmarks.h5")
    parser.add_argument("--report", default="reports/landmarks.json")
    parser.add_argument("--sheet", default="reports/landmarks.png")
    args = parser.parse_args()

    params = load_params(args.params)
    p, on_error = params["landmarks"], params["preprocess"]["on_error"]
    clips = manifest.read(args.manifest)
    column = {"first": "frames", "onset": "onset"}[p["frame"]]
    tasks = [(row.sample_id, row.frames[0] if column == "frames" else _onset_path(row)) for row in clips.itertuples()]
    found, failed = [], []
    for result in map_clips(detect_clip, tasks, workers=params["preprocess"]["workers"], desc="landmarks",
                            initializer=init_worker, initargs=(p["backend"], p["options"] or {})):
        (found if isinstance(result, ClipLandmarks) else failed).append(result)
    try:
        failures.check(failed, on_error, "landmarks")
        template = _template(found, p["template"], p["canvas"], p["eye_distance"])
    except (failures.ClipError, ValueError) as exc:
        sys.exit(str(exc))
    store.write(args.out, found, template)
    landmark_sheet(args.sheet, found, template, count=p["sheet_clips"])
    write_json(args.report, {"backend": p["backend"], "frame": p["frame"], "template": template.source,
                             "clips": len(clips), "detected": len(found),
                             "multiple_faces": sum(c.detection.faces > 1 for c in found),
                             **failures.summary(failed)})
    print(f"landmarks: {len(found)} of {len(clips)} clips, template {template.source!r}, {len(failed)} failed")


def _onset_path(row) -> str:
    return row.frames[row.frame_numbers.index(row.onset)]


def _template(found: list[ClipLandmarks], choice: str, canvas: int, eye_distance: float) -> store.Template:
    if not found:
        raise ValueError("landmarks: no clip has landmarks, cannot build a template")
    if choice == "mean":
        shapes = np.stack([c.detection.landmarks for c in found])
        return store.Template(mean_template(shapes, canvas, eye_distance), "mean", (canvas, canvas))
    by_id = {c.sample_id: c for c in found}
    if choice not in by_id:
        raise ValueError(f"landmarks.template: {choice!r} is neither 'mean' nor a clip with landmarks "
                         f"(e.g. {', '.join(list(by_id)[:3])})")
    clip = by_id[choice]
    return store.Template(clip.detection.landmarks, choice, clip.image_size)


if __name__ == "__main__":
    main()
