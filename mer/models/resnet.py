"""ResNet-18 / ResNet-50 baselines (torchvision) with the MER model interface.

The models are :class:`torchvision.models.ResNet` with

* the first conv taking ``in_channels`` input channels (7x7/2, 64 filters, as torchvision),
* the classifier ``fc`` sized to ``num_classes``,
* ``forward(motion, onset=None)``: the same call as :class:`~mer.models.mmnet.MMNet` so the
  training code treats every model alike; ``onset`` is accepted and IGNORED (a ResNet sees
  only the motion input).

State-dict keys are torchvision's, so torchvision checkpoints load directly.

``pretrained`` is an optional path to a LOCAL torchvision state dict (e.g. a downloaded
``resnet18-f37072fd.pth``); nothing is ever downloaded. It is read with
``torch.load(path, map_location="cpu", weights_only=True)``. Adaptations:

* first conv, when ``in_channels != 3`` and the checkpoint's conv is RGB: the pretrained
  kernel is averaged over its 3 input channels and that mean is repeated ``in_channels`` times
  (``w.mean(1, keepdim=True).repeat(1, in_channels, 1, 1)``). A checkpoint whose first conv
  already has ``in_channels`` channels is loaded as is.
* classifier: loaded only if its shape matches ``num_classes`` (i.e. 1000 classes); otherwise
  the fresh ``fc`` initialisation is kept.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Union

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .checkpointing import runner

__all__ = ["ResNetBaseline", "resnet18", "resnet50", "adapt_first_conv", "load_pretrained"]

PathLike = Union[str, "os.PathLike[str]"]


class ResNetBaseline(ResNet):
    """torchvision ResNet with ``in_channels`` inputs and the ``forward(motion, onset)`` call."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        num_classes: int,
        in_channels: int = 3,
    ) -> None:
        for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        super().__init__(block, list(layers), num_classes=num_classes)
        self.in_channels = in_channels
        if in_channels != 3:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each residual stage's activations during backward (less memory, more compute)."""
        self.grad_checkpointing = enable

    def forward(self, motion: Tensor, onset: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """Logits for ``motion`` (B, in_channels, H, W); ``onset`` is ignored."""
        if not self.grad_checkpointing:
            return self._forward_impl(motion)
        run = runner(True)
        x = self.maxpool(self.relu(self.bn1(self.conv1(motion))))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = run(layer, x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def adapt_first_conv(weight: Tensor, in_channels: int) -> Tensor:
    """First-conv kernel (O, I, k, k) for ``in_channels`` inputs: mean over I, repeated."""
    if weight.shape[1] == in_channels:
        return weight
    return weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)


def load_pretrained(model: ResNetBaseline, path: PathLike) -> ResNetBaseline:
    """Load a local torchvision ResNet state dict into ``model`` (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights not found: {path!r} (a local torchvision state dict is expected)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path!r} does not contain a plain state dict (name -> tensor)")
    keys = list(state)
    strip = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    state = OrderedDict((k[len(strip) :], v) for k, v in state.items())

    if "conv1.weight" not in state:
        raise ValueError(f"{path!r} is not a torchvision ResNet state dict (no 'conv1.weight')")
    conv = state["conv1.weight"]
    if conv.shape[1] not in (3, model.in_channels):
        raise ValueError(
            f"cannot adapt a first conv with {conv.shape[1]} input channels to in_channels={model.in_channels}"
        )
    state["conv1.weight"] = adapt_first_conv(conv, model.in_channels)

    # the classifier is optional: kept only when it already has num_classes outputs
    own = model.state_dict()
    optional = {"fc.weight", "fc.bias"}
    if any(k in state and state[k].shape != own[k].shape for k in optional):
        for k in optional:
            state.pop(k, None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) - optional or unexpected:
        raise ValueError(
            f"{path!r} does not match this ResNet: missing keys {sorted(set(missing) - optional)}, "
            f"unexpected keys {sorted(unexpected)}"
        )
    return model


def _build(
    block: type[BasicBlock | Bottleneck],
    layers: Sequence[int],
    num_classes: int,
    in_channels: int,
    pretrained: PathLike | None,
) -> ResNetBaseline:
    model = ResNetBaseline(block, layers, num_classes=num_classes, in_channels=in_channels)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


def resnet18(num_classes: int, in_channels: int = 3, *, pretrained: PathLike | None = None) -> ResNetBaseline:
    """ResNet-18 baseline; ``pretrained``: optional local torchvision state-dict path."""
    return _build(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, pretrained)


def resnet50(num_classes: int, in_channels: int = 3, *, pretrained: PathLike | None = None) -> ResNetBaseline:
    """ResNet-50 baseline; ``pretrained``: optional local torchvision state-dict path."""
    return _build(Bottleneck, (3, 4, 6, 3), num_classes, in_channels, pretrained)
