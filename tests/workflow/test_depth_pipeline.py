"""Depth end to end: a CAS(ME)^3-layout copy of the synthetic faces, with 16-bit depth, through to the cache."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from mer.cache_store import Cache

pytestmark = pytest.mark.slow


def _casme3_copy(repo) -> None:
    """raw/<spNO.k>/<x>/color/<n>.jpg + depth/<n>.png and a `label` sheet, from the synthetic clips."""
    truth = json.loads((repo.path / "data/synthetic/synthetic.json").read_text())
    rows = []
    for k, (sample_id, info) in enumerate(sorted(truth["clips"].items())):
        subject, clip = f"spNO.{sample_id[3:5].lstrip('0')}", "abcdefgh"[k]
        source = repo.path / "data/synthetic/CASME2_RAW_selected" / sample_id
        for name in ("color", "depth"):
            (repo.path / "raw" / subject / clip / name).mkdir(parents=True)
        for n in range(info["first_frame"], info["last_frame"] + 1):
            shutil.copy(source / f"img{n}.jpg", repo.path / "raw" / subject / clip / "color" / f"{n}.jpg")
            depth = np.full((240, 320), 40000 + 1000 * (n % 7), np.uint16)
            depth[:120] = 50000  # two depth levels: nearest sampling must keep exactly these values
            cv2.imwrite(str(repo.path / "raw" / subject / clip / "depth" / f"{n}.png"), depth)
        rows.append(
            {
                "Subject": subject,
                "Filename": clip,
                "Onset": info["onset"],
                "Apex": info["apex"],
                "Offset": info["offset"],
                "AU": "12",
                "Objective class": "I",
                "emotion": {"happiness": "happy", "surprise": "surprise"}[info["label"]],
            }
        )
    with pd.ExcelWriter(repo.path / "raw/labels.xlsx") as writer:
        pd.DataFrame(rows).to_excel(writer, sheet_name="label", index=False)


def test_depth_frames_reach_the_cache_as_uint16(built):
    repo = built  # data/synthetic is there already
    _casme3_copy(repo)
    repo.set_params(
        **{
            "dataset.format": "casme3",
            "dataset.root": "raw",
            "dataset.labels": "raw/labels.xlsx",
            "dataset.protocol": "casme3_4class",
            "dataset.subjects": ["spNO.1", "spNO.2"],
        }
    )
    repo.dvc("repro", "cache")
    cache = Cache(repo.path / "data/cache.h5")
    assert cache.has_depth and len(cache) == 4
    assert cache.classes == ["positive", "negative", "surprise", "others"]
    depth = cache.load("depth_apex")
    assert depth.dtype == np.uint16 and depth.shape == (4, 4, 224, 224)
    assert set(np.unique(depth)) <= {50000} | {40000 + 1000 * r for r in range(7)}
    assert cache.load("onset").shape == (4, 4, 224, 224, 3)
