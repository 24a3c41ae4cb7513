"""A fold's model: built as the fold stage builds it, and read back from its file with checks that name what does
not fit (another class list, input kind, model options or input size) instead of PyTorch's size-mismatch dump.
The fold loop builds with it; `mer predict` and the attention stage load fold models through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mer.cache_store import Cache
from mer.models import build_model, model_options
from mer.training import inputs


class ModelFileError(ValueError):
    """A model file that is missing, unreadable, or not a model of this run; the message says which and why."""


def build(
    name: str, options: dict[str, Any], num_classes: int, kind: str, size: int, cache: Cache | None = None
) -> nn.Module:
    """The model; MMNet's `input_size` follows `input.size` unless given explicitly. `cache`: for kind
    `precomputed`, whose channels are the cache's, and which has no onset frame for MMNet's PC branch."""
    options = dict(options)
    if "input_size" in model_options(name):
        options.setdefault("input_size", size)
    if not inputs.input_kind(kind).frames and name == "mmnet" and options.get("use_pc", True):
        raise ValueError(
            "model mmnet reads the onset frame (its PC branch), and input kind 'precomputed' has none: "
            "use model ststnet, off_apexnet, resnet18 or resnet50, or mmnet with model.options.use_pc: false"
        )
    return build_model(name, num_classes, inputs.in_channels(kind, cache), **options)


def load(path: str | Path, name: str, options: dict[str, Any], classes: list[str], kind: str, size: int) -> nn.Module:
    """The model at `path`, built as a run with these settings builds it (on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing (`dvc repro` or `dvc pull` makes models/)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... on a bad file
        raise ModelFileError(f"{path} is not a readable model file ({type(exc).__name__}: {exc})") from None
    model = build(name, options, len(classes), kind, size)
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise ModelFileError(f"{path} is not a {name} state dict like this run's models")
    first = next(k for k, v in expected.items() if v.dim() == 4)
    last = [k for k, v in expected.items() if v.dim() == 2][-1]
    if state[last].shape[0] != expected[last].shape[0]:
        raise ModelFileError(
            f"{path} predicts {state[last].shape[0]} classes, this run has {len(classes)} "
            f"({', '.join(classes)}): a model of another class list"
        )
    if state[first].shape[1] != expected[first].shape[1]:
        raise ModelFileError(
            f"{path} takes {state[first].shape[1]}-channel input, this run's input kind "
            f"{kind!r} gives {inputs.in_channels(kind)}: a model of another input kind"
        )
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ModelFileError(
                f"{path} does not fit this run's {name} {options} at input size {size}: "
                f"{key} is {tuple(state[key].shape)}, expected {tuple(value.shape)}"
            )
    model.load_state_dict(state)
    return model
