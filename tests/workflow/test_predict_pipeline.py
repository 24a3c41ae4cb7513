"""`mer predict` on the tiny reproduced pipeline: the same input and answer as the LOSO evaluation, from a
frame folder and from an mp4 made of it with OpenCV; the mean over the fold models; the optional final
model (final@all); `--spot` on a synthetic long recording; clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from mer import predict
from mer.face.crop_store import Crops
from mer.face.landmarks import make_detector
from mer.images import read_rgb
from mer.io import load_params, read_json
from mer.models import build_model
from mer.spotting.scoring import counts
from tests.workflow.conftest import Repo, ran

pytestmark = pytest.mark.slow

FOLD_MODELS = ["seed7/sub01", "seed7/sub02"]


@pytest.fixture(scope="module")
def clips(pipeline) -> pd.DataFrame:
    """The run's clips with the generator's ground truth: folder, onset, apex, first and last frame."""
    meta = read_json(pipeline.path / "data/synthetic/synthetic.json")["clips"]
    root = pipeline.path / "data/synthetic/CASME2_RAW_selected"
    return pd.DataFrame([{"sample_id": sid, "folder": root / sid, **info} for sid, info in meta.items()])


def mer(repo: Repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mer", *args], cwd=repo.path, env=repo.env, capture_output=True, text=True
    )


def predict_json(repo: Repo, clip: Path | str, onset: int, apex: int, *extra: str) -> dict:
    done = mer(repo, "predict", str(clip), "--onset", str(onset), "--apex", str(apex), "--json", "-", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fold_predictions(repo: Repo, subject: str) -> pd.DataFrame:
    return pd.read_csv(repo.path / "reports/folds/seed7" / subject / "predictions.csv").set_index("sample_id")


def write_mp4(folder: Path, numbers: list[int], path: Path) -> None:
    first = read_rgb(folder / f"img{numbers[0]}.jpg")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (first.shape[1], first.shape[0]))
    for n in numbers:
        writer.write(cv2.cvtColor(read_rgb(folder / f"img{n}.jpg"), cv2.COLOR_RGB2BGR))
    writer.release()


def test_folder_gives_the_loso_input_and_probabilities_bit_for_bit(pipeline, clips):
    """Every clip through its own fold model: the crops equal the crop stage's (data/crops.h5) pixel for pixel and the
    probabilities equal the fold's predictions.csv (written to 6 decimals)."""
    params = load_params(pipeline.path / "params.yaml")
    assert len(clips) == 4
    for clip in clips.itertuples():
        subject = clip.sample_id.split("/")[0]
        result = predict_json(pipeline, clip.folder, clip.onset, clip.apex, "--model", f"models/seed7/{subject}.pt")
        expected = fold_predictions(pipeline, subject).loc[clip.sample_id]
        classes = result["classes"]
        assert classes == params["protocols"]["synthetic_4class"]["classes"] == ["happiness", "surprise"]
        got = np.array([result["probabilities"][c] for c in classes])
        np.testing.assert_allclose(got, [expected[f"prob_{c}"] for c in classes], atol=1.5e-6)
        assert result["predicted"] == classes[int(expected["pred"])]

    run = predict.load_run(params, pipeline.path / "data/landmarks.h5", pipeline.path / "reports/folds", FOLD_MODELS)
    clip = clips.iloc[0]
    onset, apex = predict.crop_pair(
        predict.read_clip(clip.folder), clip.onset, clip.apex, run, make_detector("dlib", upsample=0)
    )
    with Crops(pipeline.path / "data/crops.h5") as crops:
        cropped = crops.frames(clip.sample_id)
    np.testing.assert_array_equal(onset, cropped[clip.onset])
    np.testing.assert_array_equal(apex, cropped[clip.apex])


def test_mp4_of_a_clip_gives_the_same_top_class_as_its_fold_model(pipeline, clips, tmp_path):
    for clip in clips.itertuples():
        subject = clip.sample_id.split("/")[0]
        numbers = list(range(clip.first_frame, clip.last_frame + 1))
        video = tmp_path / f"{clip.sample_id.replace('/', '_')}.mp4"
        write_mp4(clip.folder, numbers, video)
        result = predict_json(
            pipeline,
            video,
            clip.onset - clip.first_frame,
            clip.apex - clip.first_frame,
            "--model",
            f"models/seed7/{subject}.pt",
        )
        assert result["frames"] == len(numbers)
        expected = fold_predictions(pipeline, subject).loc[clip.sample_id]
        assert result["predicted"] == result["classes"][int(expected["pred"])], clip.sample_id


def test_default_is_the_mean_over_every_fold_model_and_prints_text(pipeline, clips, tmp_path):
    clip = clips.iloc[0]
    result = predict_json(pipeline, clip.folder, clip.onset, clip.apex)
    assert list(result["models"]) == FOLD_MODELS
    per_model = np.array([[p[c] for c in result["classes"]] for p in result["per_model"].values()])
    np.testing.assert_allclose([result["probabilities"][c] for c in result["classes"]], per_model.mean(0), atol=1e-6)
    out = tmp_path / "out.json"
    done = mer(
        pipeline, "predict", str(clip.folder), "--onset", str(clip.onset), "--apex", str(clip.apex), "--json", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "mean of 2 LOSO fold models (seed7/sub01, seed7/sub02)" in done.stdout
    assert f"predicted: {result['predicted']}" in done.stdout
    assert read_json(out) == result


def test_final_model_is_optional_and_trained_on_every_subject(built, clips):
    """final@all: absent by default; listed, it trains on all clips with the fold schedule, not evaluated."""
    stages = built.dvc("stage", "list", "--name-only").stdout.split()
    assert not any(s.startswith("final") for s in stages)
    built.set_params(final=["all"])
    done = built.dvc("repro", "final@all")
    assert ran(done.stdout) == {"final@all"}, done.stdout
    assert "final model on 4 clips, not evaluated" in done.stdout
    curves = read_json(built.path / "reports/final/all/curves.json")
    assert len(curves["train_samples"]) == 4 and curves["test_samples"] == []
    assert "NOT evaluated" in curves["note"] and curves["optimistic_best_epoch"] is None
    assert curves["train"]["seed"] == 7 and len(curves["epochs"]) == built.params()["train"]["epochs"]
    assert len(pd.read_csv(built.path / "reports/final/all/predictions.csv")) == 0
    assert "report" not in ran(built.dvc("repro").stdout)  # the LOSO report does not see it
    clip = clips.iloc[0]
    folder = built.path / "data/synthetic/CASME2_RAW_selected" / clip.sample_id
    result = predict_json(built, folder, clip.onset, clip.apex, "--model", "models/all.pt")
    assert result["models"] == {"models/all.pt": "models/all.pt"} and result["combined"] == "one model"


def test_without_onset_and_apex_it_asks_for_them_or_spot(pipeline, clips):
    folder = str(clips.iloc[0].folder)
    done = mer(pipeline, "predict", folder)
    assert done.returncode == 2
    assert "give --onset and --apex" in done.stderr and "or --spot" in done.stderr
    done = mer(pipeline, "predict", folder, "--spot", "--onset", "3")
    assert done.returncode == 2 and "--spot finds onset and apex itself" in done.stderr
    done = mer(pipeline, "predict", folder, "--onset", "3", "--apex", "5", "--csv", "x.csv")
    assert done.returncode == 2 and "--csv, --fps and --sheet go with --spot" in done.stderr


def test_spot_finds_the_events_of_a_long_video_and_classifies_each(pipeline, long_small, tmp_path):
    """A synthetic long recording (3 micro-expressions, 2 blinks): the events and no blink, one row per interval
    with the fold models' mean probabilities, in the JSON, the text and the CSV; a frame folder needs --fps."""
    root, meta = long_small
    video = root / "videos/1.avi"
    done = mer(pipeline, "predict", str(video), "--spot", "--json", "-")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    truth = [(e["onset"] - 1, e["offset"] - 1) for e in meta["recordings"]["1"]["events"]]  # video frames from 0
    spotted = [(row["onset"], row["offset"]) for row in result["intervals"]]
    assert counts(spotted, truth) == {"tp": 3, "fp": 0, "fn": 0}
    assert result["fps"] == 30 and result["frames"] == meta["recordings"]["1"]["frames"]
    assert list(result["models"]) == FOLD_MODELS
    for row in result["intervals"]:
        assert row["onset"] < row["apex"] < row["offset"] and row["predicted"] in result["classes"]
        assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    rows = tmp_path / "spotted.csv"
    sheet = tmp_path / "apexes.png"
    done = mer(pipeline, "predict", str(video), "--spot", "--csv", str(rows), "--sheet", str(sheet))
    assert done.returncode == 0, done.stderr
    assert cv2.imread(str(sheet)) is not None  # a readable PNG
    assert "3 micro-expression(s) spotted" in done.stdout
    table = pd.read_csv(rows)
    assert table[["onset", "apex", "offset"]].values.tolist() == [
        [r["onset"], r["apex"], r["offset"]] for r in result["intervals"]
    ]
    assert table["predicted"].tolist() == [r["predicted"] for r in result["intervals"]]
    for line, row in zip(done.stdout.splitlines()[2:], result["intervals"], strict=True):
        assert line.split()[:3] == [str(row["onset"]), str(row["apex"]), str(row["offset"])]
        assert line.split()[-1] == row["predicted"]
    folder = str(root / "recordings/1")
    done = mer(pipeline, "predict", folder, "--spot")
    assert done.returncode == 1 and "a frame folder has no frame rate; give it (fps)" in done.stderr
    done = mer(pipeline, "predict", folder, "--spot", "--fps", "30", "--json", "-")
    assert done.returncode == 0, done.stderr
    from_folder = [(row["onset"], row["offset"]) for row in json.loads(done.stdout)["intervals"]]  # files from 1
    assert counts(from_folder, [(a + 1, b + 1) for a, b in truth]) == {"tp": 3, "fp": 0, "fn": 0}


def _error(repo: Repo, clip: Path | str, onset: int, apex: int, *extra: str) -> str:
    done = mer(repo, "predict", str(clip), "--onset", str(onset), "--apex", str(apex), *extra)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    return done.stderr


def test_clear_errors(pipeline, clips, tmp_path):
    clip = clips.iloc[0]
    assert "does not exist" in _error(pipeline, tmp_path / "nothing", 1, 2)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    assert "OpenCV cannot read it as a video" in _error(pipeline, tmp_path / "broken.mp4", 0, 1)
    (tmp_path / "empty").mkdir()
    assert "no numbered frame files" in _error(pipeline, tmp_path / "empty", 1, 2)
    faceless = tmp_path / "faceless"
    faceless.mkdir()
    for n in range(1, 6):
        cv2.imwrite(str(faceless / f"img{n}.jpg"), np.full((240, 320, 3), 128, np.uint8))
    assert "no usable face in frame 1" in _error(pipeline, faceless, 2, 4)
    assert f"onset frame 9999 is not in {clip.folder}" in _error(pipeline, clip.folder, 9999, clip.apex)
    assert "comes before onset" in _error(pipeline, clip.folder, clip.apex, clip.onset)
    assert "model file nothing.pt is missing" in _error(
        pipeline, clip.folder, clip.onset, clip.apex, "--model", "nothing.pt"
    )
    assert f"no fold models in {tmp_path}/seed*/" in _error(
        pipeline, clip.folder, clip.onset, clip.apex, "--models", str(tmp_path)
    )
    assert f"{tmp_path / 'l.h5'} is missing" in _error(
        pipeline, clip.folder, clip.onset, clip.apex, "--landmarks", str(tmp_path / "l.h5")
    )


@pytest.mark.parametrize(
    ("classes", "channels", "expected"),
    [
        (5, 3, "predicts 5 classes, this run has 2 (happiness, surprise): a model of another class list"),
        (2, 1, "takes 1-channel input, this run's input kind 'difference' gives 3: a model of another input kind"),
    ],
)
def test_model_of_another_class_list_or_input_kind(pipeline, clips, tmp_path, classes, channels, expected):
    options = pipeline.params()["model"]["options"]
    model = build_model("mmnet", classes, channels, **options, input_size=pipeline.params()["input"]["size"])
    torch.save(model.state_dict(), tmp_path / "other.pt")
    clip = clips.iloc[0]
    assert expected in _error(pipeline, clip.folder, clip.onset, clip.apex, "--model", str(tmp_path / "other.pt"))
