"""STSTNet: the shallow triple-stream CNN on optical flow (Liong et al., FG 2019).

Liong, See, Wong, Phan, "Shallow triple stream three-dimensional CNN (STSTNet) for
micro-expression recognition", IEEE FG 2019, doi:10.1109/FG.2019.8756567. The layers are those
of ``STSTNet`` in MEB's ``meb/models/me_networks.py`` (Varanka et al. micro-expression
benchmark, github.com/tvaranka/meb), for a 28 x 28 input of u, v and optical strain:

* three streams of 3, 5 and 8 filters, each a 3x3 conv (padding 2, so 28 -> 30) -> ReLU ->
  BatchNorm -> 3x3 max-pool (stride 3, padding 1: 30 -> 10) -> dropout 0.5,
* the 16 channels concatenated -> 2x2 average pool (10 -> 5) -> flatten (400) -> linear.

That is 1,683 parameters at 3 classes (3 * 9 * 16 + 16 conv, 2 * 16 BatchNorm, 400 * 3 + 3 fc).

The three streams read the same input with the same kernel size, so here they are ONE
16-filter conv and ONE 16-channel BatchNorm: each output channel of a conv is its own filter's,
and BatchNorm normalises each channel with its own statistics and affine pair, so this is the
same function with the same parameters, in one conv call instead of three. On CPU, in the
channels-last layout the training loop uses, a training step (batch 256) takes ~0.6x the
three-stream one; in plain NCHW at one thread it is 10-20 % slower (measured).
:attr:`TripleStream.BRANCHES` says which channels are which stream: MEB's ``conv1``/``bn1``
are channels 0-2, ``conv2``/``bn2`` 3-7 and ``conv3``/``bn3`` 8-15, the order in which MEB
concatenates them. Only dropout draws its random numbers differently (one mask over the 16
channels, not three), so a seed does not reproduce MEB's masks. The parameters keep PyTorch's
default initialisation, as in MEB (the fused conv has each stream's fan-in).

In this pipeline ``input.kind: flow`` gives u, v and flow MAGNITUDE (not strain) as the three
channels; set ``input.size: 28``. ``in_channels`` follows the input. The onset frame is
accepted and IGNORED.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checkpointing import runner

__all__ = ["STSTNet", "TripleStream"]


class TripleStream(nn.Module):
    """The three conv streams as one 16-channel conv -> ReLU -> BatchNorm -> max-pool -> dropout."""

    #: MEB's stream (its conv1/bn1, conv2/bn2, conv3/bn3) -> our channels, in concatenation order
    BRANCHES: dict[str, slice] = {"conv1": slice(0, 3), "conv2": slice(3, 8), "conv3": slice(8, 16)}
    WIDTH = 16

    def __init__(self, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, self.WIDTH, kernel_size=3, padding=2)
        self.relu = nn.ReLU(inplace=True)
        self.bn = nn.BatchNorm2d(self.WIDTH)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.maxpool(self.bn(self.relu(self.conv(x)))))


class STSTNet(nn.Module):
    """STSTNet as MEB defines it, its three streams fused into one conv (see the module docstring)."""

    INPUT_SIZE = 28
    FEATURE_SIZE = 5  # after the streams' max-pool and the average pool, for a 28 x 28 input

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        super().__init__()
        self.in_channels = in_channels
        self.streams = TripleStream(in_channels)
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.fc = nn.Linear(TripleStream.WIDTH * self.FEATURE_SIZE**2, num_classes)
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the streams' activations (the only full-resolution ones) during backward."""
        self.grad_checkpointing = enable

    def forward(self, motion: Tensor, onset: Tensor | None = None) -> Tensor:  # noqa: ARG002
        """Logits for ``motion`` (B, in_channels, 28, 28); ``onset`` is ignored."""
        x = self.avgpool(runner(self.grad_checkpointing)(self.streams, motion))
        if x.shape[-2:] != (self.FEATURE_SIZE, self.FEATURE_SIZE):
            raise ValueError(
                f"STSTNet takes {self.INPUT_SIZE} x {self.INPUT_SIZE} inputs (its classifier is fixed, as in MEB); "
                f"got {tuple(motion.shape[-2:])}: set input.size: {self.INPUT_SIZE}"
            )
        return self.fc(torch.flatten(x, 1))
