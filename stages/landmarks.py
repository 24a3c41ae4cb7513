"""DVC stage `landmarks`: 68-point landmarks of each clip's first frame (or, where it shows no face, of
the next frames), and the template face."""

from __future__ import annotations

import argparse
import sys

from mer import failures
from mer.datasets import manifest_store
from mer.face import landmark_store
from mer.face.detect import (
    REFERENCE_FRAMES,
    ClipLandmarks,
    detect_clip,
    found_by,
    frames_to_try,
    init_worker,
    reference_frame,
    sheet_clips,
)
from mer.face.template import choose_template
from mer.io import load_params, write_json
from mer.lifecycle import exit_with_parent
from mer.parallel import map_clips
from mer.plots import landmark_sheet


def main() -> None:
    exit_with_parent()  # no orphan if dvc repro is killed (mer/lifecycle.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--sheet", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    p, on_error = params["landmarks"], params["preprocess"]["on_error"]
    clips = manifest_store.read(args.manifest)
    if p["frame"] not in REFERENCE_FRAMES:
        sys.exit(f"landmarks.frame must be one of {REFERENCE_FRAMES}, got {p['frame']!r}")
    if not (isinstance(p["next_frames"], int) and p["next_frames"] >= 0):
        sys.exit(f"landmarks.next_frames must be a whole number >= 0, got {p['next_frames']!r}")
    tasks = [(str(row.sample_id), _frames(row, p["frame"], p["next_frames"])) for row in clips.itertuples()]
    found: list[ClipLandmarks] = []
    failed: list[failures.ClipFailure] = []
    for result in map_clips(
        detect_clip,
        tasks,
        workers=params["preprocess"]["workers"],
        desc="landmarks",
        initializer=init_worker,
        initargs=(p["backend"], p["options"] or {}),
    ):
        if isinstance(result, ClipLandmarks):
            found.append(result)
        else:
            failed.append(result)
    try:
        failures.check(failed, on_error, "landmarks")
        template = choose_template(found, p["template"], p["canvas"], p["eye_distance"])
    except (failures.ClipError, ValueError) as exc:
        sys.exit(str(exc))
    landmark_store.write(args.out, found, template)
    counts = found_by(found)
    landmark_sheet(args.sheet, sheet_clips(found, params["previews"]["landmarks_clips"]), template)
    write_json(
        args.report,
        {
            "backend": p["backend"],
            "frame": p["frame"],
            "template": template.source,
            "clips": len(clips),
            "detected": len(found),
            "multiple_faces": sum(c.detection.faces > 1 for c in found),
            **counts,
            **failures.summary(failed),
        },
    )
    by = ", ".join(f"{name} {n}" for name, n in counts["found_by_detector"].items())
    print(
        f"landmarks: {len(found)} of {len(clips)} clips (found by {by or 'none'}; "
        f"{len(counts['fallbacks']['later_frame'])} in a later frame), template {template.source!r}, "
        f"{len(failed)} failed"
    )


def _frames(row, which: str, next_frames: int) -> list[str]:
    """The frame whose landmarks define the clip's transform (its first frame, or its onset), then the
    `next_frames` tried after it where it shows no face."""
    reference = row.frame_numbers.index(reference_frame(row.frame_numbers, row.onset, which))
    return frames_to_try(row.frames, reference, next_frames)


if __name__ == "__main__":
    main()
