"""DVC stage `normalise`: one LWM transform per clip, first-frame landmarks -> template."""
from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np
from tqdm import tqdm

from mer.face import store
from mer.face.align import normalised_landmarks
from mer.face.lwm import LWMTransform, sampling_maps
from mer.images import read_rgb
from mer.io import load_params, write_json
from mer.plots import image_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--landmarks", default="data/landmarks.h5")
    parser.add_argument("--out", default="data/normalised.h5")
    parser.add_argument("--report", default="reports/normalise.json")
    parser.add_argument("--preview", default="reports/normalise.png")
    args = parser.parse_args()

    p = load_params(args.params)["normalise"]
    marks = store.read(args.landmarks)
    template = marks.template
    width, height = template.canvas
    canvas = np.column_stack([a.ravel() for a in np.meshgrid(np.arange(width), np.arange(height))]).astype(float)
    transforms, normalised, coverage = [], [], []
    for sample_id, points in tqdm(list(zip(marks.sample_ids, marks.landmarks)), desc="normalise", unit="clip"):
        try:
            transform = LWMTransform.fit(template.landmarks, points, p["neighbours"])
        except ValueError as exc:
            sys.exit(f"normalise: {sample_id}: {exc}")
        transforms.append(transform)
        normalised.append(normalised_landmarks(transform, points, template.landmarks))
        coverage.append(transform.covered(canvas).mean())
    result = store.Normalised(marks.sample_ids, transforms, np.array(normalised), np.array(coverage), template)
    store.write_normalised(args.out, result)
    residual = np.linalg.norm(result.landmarks - template.landmarks, axis=2)
    _preview(args.preview, marks, result, p["preview_clips"])
    write_json(args.report, {
        "clips": len(transforms), "neighbours": p["neighbours"], "template": template.source,
        "canvas": list(template.canvas),
        "landmark_residual_px": {"mean": float(residual.mean()), "max": float(residual.max())},
        "canvas_coverage": {"mean": float(np.mean(coverage)), "min": float(np.min(coverage))},
    })
    print(f"normalise: {len(transforms)} clips, mean landmark residual {residual.mean():.2f} px in template space")


def _preview(path: str, marks: store.LandmarkSet, result: store.Normalised, count: int) -> None:
    """Raw first frame, normalised first frame, and the mean of all normalised first frames."""
    width, height = result.template.canvas
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    warped = []
    for frame, transform in zip(marks.frames, result.transforms):
        map_x, map_y = sampling_maps(transform, identity, (height, width))
        warped.append(cv2.remap(read_rgb(frame), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    chosen = np.linspace(0, len(warped) - 1, min(count, len(warped))).round().astype(int)
    mean = np.mean(warped, axis=0).astype(np.uint8)
    rows = [[read_rgb(marks.frames[i]), warped[i], mean] for i in chosen]
    image_grid(path, rows, [result.sample_ids[i] for i in chosen],
               ["first frame", "normalised (LWM)", "mean of all normalised"])


if __name__ == "__main__":
    main()
