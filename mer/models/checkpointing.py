"""Activation (gradient) checkpointing that leaves BatchNorm's running statistics as without it.

torch.utils.checkpoint recomputes a segment's forward during backward. In training mode
BatchNorm updates its running mean/variance on every forward, so a plain checkpoint
updates them twice per step and the saved model differs from an unchecked run. The
recomputation here restores those buffers afterwards; outputs and gradients are unchanged
(training-mode BatchNorm normalises with the batch's own statistics).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def runner(enabled: bool) -> Callable[..., Any]:
    """`checkpointed` when `enabled` and gradients are on (training), else a plain call."""
    return checkpointed if enabled and torch.is_grad_enabled() else _call


def _call(module: nn.Module, *args: Any) -> Any:
    return module(*args)


def checkpointed(module: nn.Module, *args: Any) -> Any:
    """`module(*args)`, keeping only its inputs for backward and recomputing the rest there."""
    recomputing = False

    def forward(*inputs: Any) -> Any:
        nonlocal recomputing
        if not recomputing:
            recomputing = True
            return module(*inputs)
        with _batchnorm_stats_kept(module):
            return module(*inputs)

    return checkpoint(forward, *args, use_reentrant=False)


@contextlib.contextmanager
def _batchnorm_stats_kept(module: nn.Module) -> Iterator[None]:
    kept = [
        (buffer, buffer.clone())
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for buffer in (m.running_mean, m.running_var, m.num_batches_tracked)
        if buffer is not None
    ]
    try:
        yield
    finally:
        for buffer, value in kept:
            buffer.copy_(value)
