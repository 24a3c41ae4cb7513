"""One LOSO fold end to end on a tiny synthetic cache: outputs, honesty, class weights, determinism."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mer import flow, fold_store
from mer.cache_store import Cache, CacheWriter, ClipWindows, write_precomputed
from mer.models import build_model
from mer.training import augment, device, inputs, loop

SIZE, WINDOW = 32, 2
# labels per subject; sub03 is unbalanced so fold weights differ from whole-set weights
LABELS = {"sub01": [0, 0, 1, 1], "sub02": [0, 0, 1, 1], "sub03": [0, 0, 0, 1]}
MODEL = ("mmnet", {"width_mult": 0.25, "stem_width": 16})
CONFIG = loop.TrainConfig(
    epochs=3,
    batch_size=4,
    lr=1e-3,
    weight_decay=0.01,
    gamma=0.9,
    seed=3,
    class_weights="inverse_frequency",
    threads=1,  # one per pytest worker (tests/conftest.py)
    augment=augment.Augment(crop_padding=2),
)
ROOT = Path(__file__).resolve().parents[2]


def _clip(subject: str, n: int, label: int, rng: np.random.Generator) -> ClipWindows:
    """A bright square that moves 4 px left (class 0) or right (class 1) from onset to apex."""
    frames = rng.integers(40, 60, (2, WINDOW, SIZE, SIZE, 3), dtype=np.uint8)
    x, y, step = rng.integers(10, 14), rng.integers(8, 16), 4 if label else -4
    frames[0, :, y : y + 8, x : x + 8] = 220
    frames[1, :, y : y + 8, x + step : x + step + 8] = 220
    depth = np.where(frames[..., 0] > 200, 900, 1000).astype(np.uint16)  # the square is nearer
    return ClipWindows(
        sample_id=f"{subject}/c{n}",
        subject=subject,
        label=label,
        onset=frames[0],
        apex=frames[1],
        onset_position=0,
        apex_position=1,
        onset_frames=[0, 1],
        apex_frames=[5, 6],
        depth_onset=depth[0],
        depth_apex=depth[1],
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Cache:
    path = tmp_path_factory.mktemp("train") / "cache.h5"
    rng = np.random.default_rng(0)
    with CacheWriter(path, 12, WINDOW, SIZE, ["left", "right"], True, {"dataset": {"name": "toy"}}) as writer:
        for subject, labels in LABELS.items():
            for n, label in enumerate(labels):
                writer.add(_clip(subject, n, label, rng))
    return Cache(path)


@pytest.fixture(scope="module")
def flow_file(cache, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("flow") / "flow.h5"
    flow.compute_flows(cache, path, SIZE, workers=1)
    return path


@pytest.fixture(scope="module")
def fold(cache) -> loop.FoldResult:
    return loop.train_fold(cache, "sub01", *MODEL, loop.InputConfig("difference", SIZE), CONFIG, log=lambda _: None)


def test_class_weights_by_hand():
    assert loop.class_weights(np.array([0, 0, 0, 1]), 2, "none") is None
    torch.testing.assert_close(
        loop.class_weights(np.array([0, 0, 0, 1]), 3, "inverse_frequency"), torch.tensor([4 / 9, 4 / 3, 0.0])
    )
    torch.testing.assert_close(loop.class_weights(np.array([0]), 2, [1, 2.5]), torch.tensor([1.0, 2.5]))
    with pytest.raises(ValueError, match="3 values for 2 classes"):
        loop.class_weights(np.array([0]), 2, [1, 2, 3])


def test_fold_uses_training_subjects_only(cache, monkeypatch):
    calls = []
    load = inputs.load_frames
    monkeypatch.setattr(inputs, "load_frames", lambda c, idx, *a, **k: calls.append(idx) or load(c, idx, *a, **k))
    one_epoch = loop.TrainConfig(**{**CONFIG.__dict__, "epochs": 1})
    result = loop.train_fold(
        cache, "sub02", *MODEL, loop.InputConfig("difference", SIZE), one_epoch, log=lambda _: None
    )
    train_idx, test_idx = calls
    assert "sub02" not in set(cache.subjects[train_idx]) and set(cache.subjects[test_idx]) == {"sub02"}
    assert not any(s.startswith("sub02/") for s in result.curves["train_samples"])
    # sub02 out: sub01 + sub03 = five of class 0, three of class 1 -> 8 / (2 * count)
    assert result.curves["class_weights"] == pytest.approx([0.8, 4 / 3])


def test_fold_outputs(fold, cache, tmp_path):
    paths = tmp_path / "m" / "sub01.pt", tmp_path / "f/sub01/predictions.csv", tmp_path / "f/sub01/curves.json"
    fold_store.write(tmp_path / "m", tmp_path / "f", "sub01", fold.state_dict, fold.predictions, fold.curves)
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
    assert curves["precision"] == ("bf16" if device.native_bf16(torch.device("cpu")) else "fp32")
    assert curves["device"] == "cpu" and curves["threads"] == 1


def test_same_seed_same_predictions_in_each_precision(cache):
    runs = {}
    for precision in ("fp32", "bf16", "fp32", "bf16"):
        config = loop.TrainConfig(**{**CONFIG.__dict__, "precision": precision})
        logs: list[str] = []
        result = loop.train_fold(cache, "sub01", *MODEL, loop.InputConfig("difference", SIZE), config, log=logs.append)
        assert result.curves["precision"] == precision
        assert logs[0].endswith(f"(cpu, {precision}, 1 thread)")  # mer.training.device's choice, logged at the start
        if precision not in runs:
            runs[precision] = result
            continue
        pd.testing.assert_frame_equal(result.predictions, runs[precision].predictions, check_exact=True)
        for key, value in result.state_dict.items():
            assert torch.equal(value, runs[precision].state_dict[key]), (precision, key)
    # bf16 autocast really ran: the weights differ from fp32's
    assert not all(torch.equal(v, runs["bf16"].state_dict[k]) for k, v in runs["fp32"].state_dict.items())


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="train.precision must be one of"):
        loop.TrainConfig.from_params({"precision": "half"})


def test_stage_cli(cache, tmp_path):
    params = {
        "input": {"kind": "difference", "size": SIZE},
        "model": {"name": MODEL[0], "options": MODEL[1]},
        "train": {
            **{k: v for k, v in CONFIG.__dict__.items() if k != "seed"},
            "seeds": [3, 4],
            "epochs": 1,
            "augment": CONFIG.augment.__dict__,
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "train.py"),
            "--subject",
            "sub03",
            "--seed",
            "4",
            "--params",
            str(tmp_path / "params.yaml"),
            "--cache",
            str(cache.path),
            "--models",
            str(tmp_path / "models"),
            "--reports",
            str(tmp_path / "folds"),
        ],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "models" / "seed4" / "sub03.pt").exists()
    fold = tmp_path / "folds" / "seed4" / "sub03"
    assert {p.name for p in fold.iterdir()} == {"predictions.csv", "curves.json", "live"}
    assert json.loads((fold / "curves.json").read_text())["train"]["seed"] == 4
    assert json.loads((fold / "live" / "metrics.json").read_text())["step"] == 1
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "train.py"),
            "--subject",
            "sub03",
            "--params",
            str(tmp_path / "params.yaml"),
            "--cache",
            str(cache.path),
            "--models",
            str(tmp_path / "models"),
            "--reports",
            str(tmp_path / "folds"),
        ],
        check=True,
        capture_output=True,
    )
    assert (tmp_path / "models" / "seed3" / "sub03.pt").exists()  # no --seed: the first of train.seeds


@pytest.mark.parametrize("name", ["mmnet", "resnet18", "resnet50"])
@pytest.mark.parametrize("kind", inputs.FRAME_KINDS)
def test_every_model_trains_on_every_input_kind(cache, flow_file, name, kind):
    options = MODEL[1] if name == "mmnet" else {}
    one_epoch = loop.TrainConfig(**{**CONFIG.__dict__, "epochs": 1})
    result = loop.train_fold(
        cache, "sub02", name, options, loop.InputConfig(kind, SIZE), one_epoch, flow=flow_file, log=lambda _: None
    )
    model = build_model(
        name, 2, inputs.in_channels(kind), **({**options, "input_size": SIZE} if name == "mmnet" else options)
    )
    model.load_state_dict(result.state_dict)
    assert len(result.predictions) == 4 and result.curves["input"]["kind"] == kind


def test_flow_kind_without_the_flow_file_is_a_clear_error(cache):
    with pytest.raises(ValueError, match=r"input kind 'flow' needs the flow stage's file \(data/flow\.h5\)"):
        loop.train_fold(cache, "sub02", *MODEL, loop.InputConfig("flow", SIZE), CONFIG, log=lambda _: None)


def test_overfits_a_handful_of_clips(cache):
    """No augmentation, no weight decay: the training loss on 8 clips must fall to near zero."""
    config = loop.TrainConfig(
        epochs=40,
        batch_size=8,
        lr=2e-3,
        weight_decay=0.0,
        gamma=1.0,
        seed=1,
        augment=augment.Augment(frame_jitter=False, flip=0, crop_padding=0, rotation=0, colour=0),
    )
    result = loop.train_fold(cache, "sub03", *MODEL, loop.InputConfig("difference", SIZE), config, log=lambda _: None)
    losses = [e["train_loss"] for e in result.curves["epochs"]]
    assert losses[0] > 0.5 and min(losses[-5:]) < 0.05, losses
    assert result.curves["epochs"][-1]["train_acc"] == 1.0


def test_a_fold_whose_training_loss_rises_is_flagged_and_one_whose_loss_falls_is_not(fold, cache):
    """The paper's schedule on 8 clips (one AdamW step an epoch, README "A diverging fold") rises; CONFIG falls."""
    paper = loop.TrainConfig(**{**CONFIG.__dict__, "lr": 8e-4, "weight_decay": 0.6, "batch_size": 32})
    lines: list[str] = []
    rising = loop.train_fold(cache, "sub01", *MODEL, loop.InputConfig("difference", SIZE), paper, log=lines.append)
    first, final = (rising.curves["epochs"][i]["train_loss"] for i in (0, -1))
    assert final > first and rising.curves["diverged"] is True
    assert lines[2] == (
        f"WARNING fold 1/3 sub01: training loss rose from {first:.3g} (epoch 1) to {final:.3g} (epoch 3): "
        'this fold diverged (README, "A diverging fold")'
    )
    losses = [e["train_loss"] for e in fold.curves["epochs"]]
    assert losses[-1] < losses[0] and fold.curves["diverged"] is False
    assert not loop.diverged([{"train_loss": 1.0}])  # one epoch: nothing to rise from


def test_validation_subjects_choose_the_epoch_without_the_test_subject(cache):
    config = loop.TrainConfig(**{**CONFIG.__dict__, "epochs": 4, "validation_subjects": 1})
    result = loop.train_fold(cache, "sub01", *MODEL, loop.InputConfig("difference", SIZE), config, log=lambda _: None)
    curves = result.curves
    held = {s.split("/")[0] for s in curves["validation_samples"]}
    assert len(held) == 1 and held < {"sub02", "sub03"}
    assert not held & {s.split("/")[0] for s in curves["train_samples"]}
    val_acc = [e["val_acc"] for e in curves["epochs"]]
    chosen = curves["epochs"][curves["selected_epoch"] - 1]
    assert curves["selection"] == "validation" and chosen["val_acc"] == max(val_acc)
    assert val_acc.index(max(val_acc)) + 1 == curves["selected_epoch"]  # the first best, no later tie wins
    assert result.predictions.pred.tolist() == chosen["test_pred"]


def test_validation_subjects_out_of_range(cache):
    config = loop.TrainConfig(**{**CONFIG.__dict__, "validation_subjects": 2})
    with pytest.raises(ValueError, match=r"validation_subjects must be in 0\.\.1 \(this fold trains on 2 subjects\)"):
        loop.train_fold(cache, "sub01", *MODEL, loop.InputConfig("difference", SIZE), config, log=lambda _: None)


def test_progress_shows_fold_k_of_n_an_epoch_bar_with_eta_and_one_summary_line(cache, capsys):
    lines = []
    result = loop.train_fold(cache, "sub02", *MODEL, loop.InputConfig("difference", SIZE), CONFIG, log=lines.append)
    bar = capsys.readouterr().err
    assert "fold 2/3 sub02:" in bar and f"{CONFIG.epochs}/{CONFIG.epochs} [" in bar and "epoch/s" in bar
    assert "<" in bar and "test_loss" in bar  # tqdm's elapsed<remaining, and the epoch's scores
    assert len(lines) == 2
    assert lines[0].startswith(f"fold 2/3 sub02: {CONFIG.epochs} epochs on 8 training clips, 0 validation, 4 test")
    accuracy = (result.predictions.label == result.predictions.pred).mean()
    assert lines[1].startswith(
        f"fold 2/3 sub02: kept epoch {CONFIG.epochs} (final), test accuracy {accuracy:.3f} on 4 clips"
    )
    assert loop.fold_position(cache, "sub03") == (3, 3)


@pytest.fixture(scope="module")
def precomputed_cache(tmp_path_factory) -> Cache:
    """12 clips of 3-channel 28x28 stored inputs whose class is which channel holds a bright square."""
    rng = np.random.default_rng(0)
    motion = rng.normal(0, 0.1, (12, 3, 28, 28)).astype(np.float32)
    labels = np.arange(12) % 2
    motion[np.arange(12), labels, 10:18, 10:18] += 1.0
    clips = [(f"s{i // 4}/c{i}", f"s{i // 4}", int(labels[i])) for i in range(12)]
    path = tmp_path_factory.mktemp("precomputed") / "cache.h5"
    write_precomputed(path, motion, clips, ["a", "b"], {"dataset": {"name": "toy"}})
    return Cache(path)


def test_precomputed_inputs_train_as_stored_without_frames(precomputed_cache):
    cache = precomputed_cache
    assert not cache.has_frames and cache.input_channels == 3 and cache.window == 0
    config = loop.TrainConfig(
        epochs=40,
        batch_size=4,
        lr=1e-2,
        weight_decay=0.0,
        gamma=1.0,
        optimizer="adam",
        seed=1,
        threads=1,
        augment=augment.OFF,
    )
    threads = torch.get_num_threads()
    try:
        result = loop.train_fold(
            cache, "s2", "ststnet", {}, loop.InputConfig("precomputed", 28), config, log=lambda _: None
        )
        assert torch.get_num_threads() == 1  # train.threads: the fold's process runs on one thread
    finally:
        torch.set_num_threads(threads)
    assert result.curves["train"]["optimizer"] == "adam" and result.curves["input"]["kind"] == "precomputed"
    assert (result.predictions.label == result.predictions.pred).all()  # the square's channel is the class
    assert result.curves["epochs"][-1]["train_loss"] < result.curves["epochs"][0]["train_loss"]


def test_precomputed_inputs_refuse_what_they_cannot_do(precomputed_cache, cache):
    run = functools.partial(loop.train_fold, log=lambda _: None)
    plain = loop.TrainConfig(epochs=1, batch_size=4, augment=augment.OFF)
    with pytest.raises(ValueError, match=r"input kind 'precomputed' trains without augmentation"):
        run(precomputed_cache, "s2", "resnet18", {}, loop.InputConfig("precomputed", 28), loop.TrainConfig(epochs=1))
    with pytest.raises(
        ValueError, match=r"model mmnet reads the onset frame .* mmnet with model\.options\.use_pc: false"
    ):
        run(precomputed_cache, "s2", *MODEL, loop.InputConfig("precomputed", 28), plain)
    with pytest.raises(ValueError, match=r"holds precomputed inputs and no frames: use input kind 'precomputed'"):
        run(precomputed_cache, "s2", "resnet18", {}, loop.InputConfig("difference", 28), plain)
    with pytest.raises(ValueError, match=r"needs a cache of precomputed inputs .* holds frames"):
        run(cache, "sub02", "resnet18", {}, loop.InputConfig("precomputed", SIZE), plain)
    with pytest.raises(ValueError, match=r"train.optimizer must be one of \('adamw', 'adam'\), got 'sgd'"):
        loop.TrainConfig.from_params({"optimizer": "sgd"})
