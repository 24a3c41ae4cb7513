"""Models of the MER pipeline: MMNet, ResNet baselines and the shallow optical-flow CNNs behind one factory.

Every model is called as ``model(motion, onset)`` and returns logits (B, num_classes):
``motion`` (B, in_channels, H, W) is the main-branch input (apex - onset, optical flow,
depth difference, ...), ``onset`` (B, 3, H, W) the onset frame (used by MMNet's PC branch,
ignored by the other models).

    >>> model = build_model("mmnet", num_classes=5, in_channels=3, use_pc=False)

Options per model (keyword arguments of ``build_model``):

* ``"mmnet"``: ``use_pc``, ``attention_prior``, ``input_size``, ``stem_width``, ``width_mult``,
  ``pc_antialias`` (see :mod:`mer.models.mmnet`).
* ``"resnet18"``, ``"resnet50"``: ``pretrained`` (local torchvision state-dict path, see
  :mod:`mer.models.resnet`, imported on first use).
* ``"ststnet"``: none (STSTNet, 28 x 28 u, v, strain/magnitude; see :mod:`mer.models.ststnet`).
* ``"off_apexnet"``: ``dropout`` (OFF-ApexNet, 28 x 28, reads motion channels 0-1 = u, v; see
  :mod:`mer.models.off_apexnet`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .mmnet import MMNet
from .off_apexnet import OffApexNet
from .official import convert_official_state_dict
from .ststnet import STSTNet

__all__ = [
    "MODEL_NAMES",
    "build_model",
    "model_options",
    "MMNet",
    "OffApexNet",
    "STSTNet",
    "convert_official_state_dict",
]


def _resnet(name: str) -> Callable[..., nn.Module]:
    """A ResNet builder, importing torchvision only then: it adds ~160 MB to every process that imports it,
    which an MMNet fold does not need."""
    from . import resnet

    return getattr(resnet, name)


_BUILDERS: dict[str, Callable[[], Callable[..., nn.Module]]] = {
    "mmnet": lambda: MMNet,
    "resnet18": lambda: _resnet("resnet18"),
    "resnet50": lambda: _resnet("resnet50"),
    "ststnet": lambda: STSTNet,
    "off_apexnet": lambda: OffApexNet,
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def model_options(name: str) -> frozenset[str]:
    """Names of the options ``build_model(name, ...)`` accepts besides num_classes/in_channels."""
    builder = _builder(name)
    params = inspect.signature(builder).parameters
    return frozenset(p for p in params if p not in ("self", "num_classes", "in_channels"))


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        load = _BUILDERS[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown model name {name!r}; expected one of: {', '.join(MODEL_NAMES)}") from None
    return load()


def build_model(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
    """Build one of :data:`MODEL_NAMES` (case-insensitive).

    Raises:
        ValueError: unknown model name, or an option the model does not have.
    """
    builder = _builder(name)
    allowed = model_options(name)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; "
            f"allowed: {', '.join(sorted(allowed)) or '(none)'}"
        )
    return builder(num_classes=num_classes, in_channels=in_channels, **options)
