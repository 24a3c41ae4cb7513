"""OFF-ApexNet: a shallow CNN on the onset -> apex optical flow (Gan et al., 2019).

Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition system", Signal
Processing: Image Communication 74 (2019) 129-139, doi:10.1016/j.image.2019.02.005. The layers
are those of ``OffApexNet`` in MEB's ``meb/models/me_networks.py`` (Varanka et al.
micro-expression benchmark, github.com/tvaranka/meb), for a 28 x 28 input:

* features: 3x3 conv, 2 -> 6 filters (padding 1) -> ReLU -> 2x2 max-pool (28 -> 14) ->
  3x3 conv, 6 -> 16 filters (padding 1) -> ReLU -> 2x2 max-pool (14 -> 7),
* classifier: flatten (784) -> dropout -> linear 1024 -> ReLU -> dropout -> linear to the classes.

That is 807,909 parameters at 3 classes (114 + 880 conv, 803,840 + 3,075 linear).

The paper presents the horizontal and vertical flow as two streams; MEB, followed here, stacks
them as the two input channels of ONE convolution stack, so its first conv mixes u and v.

Only channels 0 and 1 of ``motion`` are read (u, v of ``input.kind: flow``); any further
channel (this pipeline's flow magnitude, or an optical strain) is IGNORED, as MEB's benchmark
feeds only u and v. ``in_channels`` (the input's channels, from the training loop) must
therefore be at least 2. Set ``input.size: 28``. The onset frame is accepted and IGNORED.

State-dict keys are MEB's with a prefix: ``conv1``/``conv2`` -> ``features.conv1``/``features.conv2``,
``fc1``/``fc`` -> ``classifier.fc1``/``classifier.fc``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from .checkpointing import runner

__all__ = ["OffApexNet"]


class OffApexNet(nn.Module):
    """OFF-ApexNet as MEB defines it, on channels 0 and 1 (u, v) of the motion input."""

    FLOW_CHANNELS = 2  # u, v: the channels read
    INPUT_SIZE = 28
    FEATURE_SIZE = 7  # after the two 2x2 max-pools, for a 28 x 28 input

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.5) -> None:
        for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        if in_channels < self.FLOW_CHANNELS:
            raise ValueError(
                f"OFF-ApexNet reads horizontal and vertical optical flow (motion channels 0 and 1), "
                f"so in_channels must be >= 2, got {in_channels} (use input.kind: flow)"
            )
        super().__init__()
        self.in_channels = in_channels
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(self.FLOW_CHANNELS, 6, kernel_size=3, padding=1),
                relu1=nn.ReLU(inplace=True),
                pool1=nn.MaxPool2d(kernel_size=2, stride=2),
                conv2=nn.Conv2d(6, 16, kernel_size=3, padding=1),
                relu2=nn.ReLU(inplace=True),
                pool2=nn.MaxPool2d(kernel_size=2, stride=2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                drop1=nn.Dropout(dropout),
                fc1=nn.Linear(16 * self.FEATURE_SIZE**2, 1024),
                relu=nn.ReLU(inplace=True),
                drop2=nn.Dropout(dropout),
                fc=nn.Linear(1024, num_classes),
            )
        )
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the conv features' activations (the only full-resolution ones) during backward."""
        self.grad_checkpointing = enable

    def forward(self, motion: Tensor, onset: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """Logits for ``motion`` (B, in_channels, 28, 28), of which channels 0 and 1 are read; ``onset`` is ignored."""
        if motion.shape[1] != self.in_channels:
            raise ValueError(f"OFF-ApexNet built for {self.in_channels} input channels, got {motion.shape[1]}")
        x = runner(self.grad_checkpointing)(self.features, motion[:, : self.FLOW_CHANNELS])
        if x.shape[-2:] != (self.FEATURE_SIZE, self.FEATURE_SIZE):
            raise ValueError(
                f"OFF-ApexNet takes {self.INPUT_SIZE} x {self.INPUT_SIZE} inputs (its classifier is fixed, as in MEB); "
                f"got {tuple(motion.shape[-2:])}: set input.size: {self.INPUT_SIZE}"
            )
        return self.classifier(torch.flatten(x, 1))
