"""mer.training.fold_model: a fold model read back with checks that name what does not fit."""

from __future__ import annotations

import pytest
import torch

from mer.training import fold_model

CLASSES = ["left", "right"]


def _save(path, classes: int, kind: str = "difference", size: int = 32):
    model = fold_model.build("resnet18", {}, classes, kind, size)
    torch.save(model.state_dict(), path)
    return model


def test_a_fold_model_loads_back_equal(tmp_path):
    saved = _save(tmp_path / "m.pt", 2)
    loaded = fold_model.load(tmp_path / "m.pt", "resnet18", {}, CLASSES, "difference", 32)
    assert all(
        torch.equal(a, b) for a, b in zip(saved.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize(
    "write,message",
    [
        (lambda p: None, "is missing (`dvc repro` or `dvc pull` makes models/)"),
        (lambda p: p.write_bytes(b"not a model"), "is not a readable model file"),
        (lambda p: torch.save({"weight": torch.zeros(1)}, p), "is not a resnet18 state dict like this run's models"),
        (lambda p: _save(p, 3), "predicts 3 classes, this run has 2 (left, right): a model of another class list"),
        (lambda p: _save(p, 2, "depth"), "takes 1-channel input, this run's input kind 'difference' gives 3"),
    ],
)
def test_what_does_not_fit_is_named(tmp_path, write, message):
    path = tmp_path / "m.pt"
    write(path)
    with pytest.raises(fold_model.ModelFileError, match=str(path)) as error:
        fold_model.load(path, "resnet18", {}, CLASSES, "difference", 32)
    assert message in str(error.value)
