"""Each figure renders at a readable size, with its legend outside the data, from realistic inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

import mer.plots
import mer.report.figures
from mer.plots import image_grid
from mer.report import figures

SUBJECTS = {
    f"sub{n:02d}": {"accuracy": a, "clips": c}
    for n, a, c in [(1, 0.25, 8), (2, 0.5, 8), (3, 0.125, 8), (4, 1.0, 8), (5, 0.375, 8), (6, 0.75, 8)]
}


@pytest.fixture
def rendered(monkeypatch):
    """Each saved figure's axes and legend boxes (pixels), taken just before it is written."""
    boxes = []

    def recording_save(fig, path):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            boxes.append((ax.get_window_extent(renderer), legend and legend.get_window_extent(renderer)))
        real_save(fig, path)

    real_save = mer.plots.save
    monkeypatch.setattr(mer.report.figures, "save", recording_save)
    return boxes


def _size(path) -> tuple[int, int]:
    height, width = cv2.imread(str(path)).shape[:2]
    return width, height


def _legends_outside(boxes) -> None:
    legends = [(ax, legend) for ax, legend in boxes if legend is not None]
    assert legends, "the figure has no legend"
    for ax, legend in legends:
        assert not ax.overlaps(legend), f"legend {legend} over the axes {ax}"


def test_subject_bars_are_wide_labelled_and_keep_the_legend_off_the_bars(tmp_path, rendered):
    figures.subject_bars(tmp_path / "subjects.png", SUBJECTS, 0.5)
    width, height = _size(tmp_path / "subjects.png")
    assert width >= 800 and height >= 400
    _legends_outside(rendered)


def test_training_curves_show_test_loss_with_legends_below_the_axes(tmp_path, rendered, monkeypatch):
    epochs = np.arange(1, 31)
    table = pd.DataFrame({"epoch": epochs})
    for name, values in {
        "train_loss": 3 / epochs,
        "test_loss": 1.5 + 0 * epochs,
        "train_acc": 1 - 0.7 / epochs,
        "test_acc": 0.25 + 0 * epochs,
    }.items():
        table[f"{name}_mean"], table[f"{name}_min"], table[f"{name}_max"] = values, values - 0.05, values + 0.05
    labels = []
    real_plot = mer.report.figures.plt.Axes.plot
    monkeypatch.setattr(
        mer.report.figures.plt.Axes,
        "plot",
        lambda ax, *a, **k: (labels.append(k.get("label")), real_plot(ax, *a, **k))[1],
    )
    figures.training_curves(tmp_path / "curves.png", table)
    assert labels == ["train loss", "test loss", "train acc", "test acc"]
    width, height = _size(tmp_path / "curves.png")
    assert width >= 1000 and height >= 400
    _legends_outside(rendered)


def test_confusion_renders_readable(tmp_path):
    matrix = np.array([[5, 1, 0, 2], [0, 4, 2, 0], [1, 1, 6, 0], [0, 0, 1, 7]])
    figures.confusion(tmp_path / "confusion.png", matrix, ["happiness", "surprise", "disgust", "other"], "LOSO")
    width, height = _size(tmp_path / "confusion.png")
    assert width >= 600 and height >= 300


def test_crop_sheet_panels_are_large_enough_to_see_a_face(tmp_path):
    face = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    rows = [[face, face, face[..., 0]] for _ in range(4)]
    image_grid(
        tmp_path / "crop.png",
        rows,
        [f"class{r}\nsub0{r}/EP0{r}" for r in range(4)],
        ["onset", "apex", "|apex - onset| x4"],
    )
    width, height = _size(tmp_path / "crop.png")
    assert width >= 3 * 224 and height >= 4 * 224


def test_crop_sheet_draws_clips_across_subjects_not_the_first_subjects_only():
    from mer.face.crop import Cropped
    from stages.crop import sheet_clips

    # like the default manifest: each subject has clips of every class, and sub01's come first
    ids = [f"sub0{s}/{label}{n}" for s in (1, 2, 3) for label in ("happiness", "surprise") for n in (1, 2)]
    clips = pd.DataFrame(
        {"sample_id": ids, "subject": [i.split("/")[0] for i in ids], "label": [i.split("/")[1][:-1] for i in ids]}
    ).set_index("sample_id", drop=False)
    done = [Cropped(i, [1, 2], [3, 4], [1, 2, 3, 4], np.zeros((0, 8, 8, 3), np.uint8), None, 0.0, 0.0) for i in ids]
    chosen = [c.sample_id for c in sheet_clips(done, clips, 2)]
    assert chosen == ["sub01/happiness1", "sub02/happiness1", "sub03/surprise1", "sub01/surprise1"]
