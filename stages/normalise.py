"""DVC stage `normalise`: one LWM transform per clip, first-frame landmarks -> template."""

from __future__ import annotations

import argparse
import sys

import numpy as np
from tqdm import tqdm

from mer.face import landmark_store, normalised_store
from mer.face.align import PREVIEW_STEP, normalised_landmarks, preview_warp
from mer.face.lwm import LWMTransform
from mer.images import read_rgb
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent
from mer.plots import image_grid


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--landmarks", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--preview", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    p, shown_clips = params["normalise"], params["previews"]["normalise_clips"]
    marks = landmark_store.read(args.landmarks)
    template = marks.template
    width, height = template.canvas
    shown = set(
        np.linspace(0, len(marks.sample_ids) - 1, min(shown_clips, len(marks.sample_ids))).round().astype(int).tolist()
    )
    transforms, normalised, previews = [], [], []
    mean_face = np.zeros((height // PREVIEW_STEP, width // PREVIEW_STEP, 3))
    for i, (sample_id, frame, points) in enumerate(
        tqdm(list(zip(marks.sample_ids, marks.frames, marks.landmarks, strict=True)), desc="normalise", unit="clip")
    ):
        try:
            transform = LWMTransform.fit(template.landmarks, points, p["neighbours"])
        except ValueError as exc:
            sys.exit(f"normalise: {sample_id}: {exc}")
        transforms.append(transform)
        normalised.append(normalised_landmarks(transform, points, template.landmarks))
        # the preview's running mean of all normalised first frames (sharp eyes/mouth = aligned)
        raw = read_rgb(frame)
        warped = preview_warp(transform, raw, template.canvas)
        mean_face += warped
        if i in shown:
            previews.append((sample_id, raw, warped))
    result = normalised_store.Normalised(marks.sample_ids, transforms, np.array(normalised), template)
    normalised_store.write(args.out, result)
    residual = np.linalg.norm(result.landmarks - template.landmarks, axis=2)
    mean_face = (mean_face / max(len(transforms), 1)).astype(np.uint8)
    image_grid(
        args.preview,
        [[raw, warped, mean_face] for _, raw, warped in previews],
        [sample_id for sample_id, _, _ in previews],
        ["first frame", "normalised (LWM)", "mean of all normalised"],
    )
    write_json(
        args.report,
        {
            "clips": len(transforms),
            "neighbours": p["neighbours"],
            "template": template.source,
            "canvas": list(template.canvas),
            "landmark_residual_px": {"mean": float(residual.mean()), "max": float(residual.max())},
            "canvas_coverage": _canvas_coverage(transforms[0], width, height) if transforms else None,
        },
    )
    print(f"normalise: {len(transforms)} clips, mean landmark residual {residual.mean():.2f} px in template space")


def _canvas_coverage(transform: LWMTransform, width: int, height: int) -> float:
    """Fraction of canvas pixels inside some circle of influence. Circles live in template space
    (every clip has the same centres and radii), so one clip's coverage is every clip's."""
    v, u = np.mgrid[0:height, 0:width]
    return float(transform.covered(np.column_stack([u.ravel(), v.ravel()])).mean())


if __name__ == "__main__":
    main()
