"""One LOSO fold end to end on a tiny synthetic cache: outputs, honesty, class weights, determinism."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mer import inputs, train
from mer.cache import Cache, CacheWriter, ClipWindows
from mer.models import build_model

SIZE, WINDOW = 32, 2
# labels per subject; sub03 is unbalanced so fold weights differ from whole-set weights
LABELS = {"sub01": [0, 0, 1, 1], "sub02": [0, 0, 1, 1], "sub03": [0, 0, 0, 1]}
MODEL = ("mmnet", {"width_mult": 0.25, "stem_width": 16})
CONFIG = train.TrainConfig(epochs=3, batch_size=4, lr=1e-3, weight_decay=0.01, gamma=0.9, seed=3,
                           class_weights="inverse_frequency", augment=train.Augment(crop_padding=2))
ROOT = Path(__file__).resolve().parents[1]


def _clip(subject: str, n: int, label: int, rng: np.random.Generator) -> ClipWindows:
    """A bright square that moves 4 px left (class 0) or right (class 1) from onset to apex."""
    frames = rng.integers(40, 60, (2, WINDOW, SIZE, SIZE, 3), dtype=np.uint8)
    x, y, step = rng.integers(10, 14), rng.integers(8, 16), 4 if label else -4
    frames[0, :, y:y + 8, x:x + 8] = 220
    frames[1, :, y:y + 8, x + step:x + step + 8] = 220
    return ClipWindows(sample_id=f"{subject}/c{n}", subject=subject, label=label, onset=frames[0], apex=frames[1],
                       onset_position=0, apex_position=1, onset_frames=[0, 1], apex_frames=[5, 6])


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Cache:
    path = tmp_path_factory.mktemp("train") / "cache.h5"
    rng = np.random.default_rng(0)
    writer = CacheWriter(path, 12, WINDOW, SIZE, ["left", "right"], False, {"dataset": {"name": "toy"}})
    for subject, labels in LABELS.items():
        for n, label in enumerate(labels):
            writer.add(_clip(subject, n, label, rng))
    writer.close()
    return Cache(path)


@pytest.fixture(scope="module")
def fold(cache) -> train.FoldResult:
    return train.train_fold(cache, "sub01", *MODEL, train.InputConfig("difference", SIZE), CONFIG, log=lambda _: None)


def test_class_weights_by_hand():
    assert train.class_weights(np.array([0, 0, 0, 1]), 2, "none") is None
    torch.testing.assert_close(train.class_weights(np.array([0, 0, 0, 1]), 3, "inverse_frequency"),
                               torch.tensor([4 / 9, 4 / 3, 0.0]))
    torch.testing.assert_close(train.class_weights(np.array([0]), 2, [1, 2.5]), torch.tensor([1.0, 2.5]))
    with pytest.raises(ValueError, match="3 values for 2 classes"):
        train.class_weights(np.array([0]), 2, [1, 2, 3])


def test_fold_uses_training_subjects_only(cache, monkeypatch):
    calls = []
    load = inputs.load_frames
    monkeypatch.setattr(inputs, "load_frames", lambda c, idx, *a, **k: calls.append(idx) or load(c, idx, *a, **k))
    one_epoch = train.TrainConfig(**{**CONFIG.__dict__, "epochs": 1})
    result = train.train_fold(cache, "sub02", *MODEL, train.InputConfig("difference", SIZE), one_epoch,
                              log=lambda _: None)
    train_idx, test_idx = calls
    assert "sub02" not in set(cache.subjects[train_idx]) and set(cache.subjects[test_idx]) == {"sub02"}
    assert not any(s.startswith("sub02/") for s in result.curves["train_samples"])
    # sub02 out: sub01 + sub03 = five of class 0, three of class 1 -> 8 / (2 * count)
    assert result.curves["class_weights"] == pytest.approx([0.8, 4 / 3])


def test_fold_outputs(fold, cache, tmp_path):
    paths = tmp_path / "m.pt", tmp_path / "f" / "predictions.csv", tmp_path / "f" / "curves.json"
    train.write_fold(fold, *paths)
    model = build_model(MODEL[0], 2, 3, input_size=SIZE, **MODEL[1])
    model.load_state_dict(torch.load(paths[0], weights_only=True))
    table = pd.read_csv(paths[1])
    assert list(table.columns) == ["sample_id", "subject", "label", "pred", "prob_left", "prob_right"]
    assert set(table.subject) == {"sub01"} and len(table) == 4
    np.testing.assert_allclose(table[["prob_left", "prob_right"]].sum(axis=1), 1, atol=1e-5)
    curves = json.loads(paths[2].read_text())
    assert [e["epoch"] for e in curves["epochs"]] == [1, 2, 3] and curves["selected_epoch"] == 3
    assert curves["epochs"][-1]["test_pred"] == table.pred.tolist()
    assert all(np.isfinite(e["train_loss"]) and len(e["test_pred"]) == 4 for e in curves["epochs"])
    assert "OPTIMISTIC" in curves["optimistic_best_epoch"]["note"]


def test_same_seed_same_predictions(fold, cache):
    again = train.train_fold(cache, "sub01", *MODEL, train.InputConfig("difference", SIZE), CONFIG,
                             log=lambda _: None)
    pd.testing.assert_frame_equal(fold.predictions, again.predictions, check_exact=True)
    for key, value in fold.state_dict.items():
        assert torch.equal(value, again.state_dict[key]), key


def test_flip_negates_flow_u():
    flow = torch.zeros(1, 3, 8, 8)
    flow[:, 0], flow[:, 1] = 2.0, 0.5
    flow[:, 0, :, :4] = 1.0  # left half different, to see the mirror
    out = train.random_affine(flow, train.Augment(flip=1.0, crop_padding=0, rotation=0), torch.Generator(),
                              vectors=slice(0, 2))
    torch.testing.assert_close(out[:, 0], -flow[:, 0].flip(-1))
    torch.testing.assert_close(out[:, 1:], flow[:, 1:].flip(-1))


def test_colour_jitter_shares_factors_within_a_clip():
    frames = torch.rand(4, 3, 8, 8)
    onset, apex = train.colour_jitter(frames, frames.clone(), 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(onset, apex) and not torch.equal(onset, frames)


def test_stage_cli(cache, tmp_path):
    params = {"input": {"kind": "difference", "size": SIZE, "flow_store": None},
              "model": {"name": MODEL[0], "options": MODEL[1]},
              "train": {**CONFIG.__dict__, "epochs": 1, "augment": CONFIG.augment.__dict__}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, str(ROOT / "stages" / "train.py"), "--subject", "sub03", "--params",
                    str(tmp_path / "params.yaml"), "--cache", str(cache.path), "--models", str(tmp_path / "models"),
                    "--reports", str(tmp_path / "folds")], check=True, capture_output=True)
    assert (tmp_path / "models" / "sub03.pt").exists()
    assert {p.name for p in (tmp_path / "folds" / "sub03").iterdir()} == {"predictions.csv", "curves.json"}
