"""Gradient checkpointing changes memory, not training: same loss, gradients and BatchNorm statistics."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mer.models import build_model
from mer.models.checkpointing import checkpointed

MODELS = [("mmnet", {"input_size": 32, "width_mult": 0.25, "stem_width": 16}), ("resnet18", {})]


def _step(model: nn.Module, motion: torch.Tensor, onset: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    model.train()
    loss = model(motion, onset).logsumexp(1).mean()
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name,options", MODELS)
def test_checkpointed_step_matches_the_plain_one(name, options):
    torch.manual_seed(0)
    plain = build_model(name, 3, 3, **options)
    checked = copy.deepcopy(plain)
    checked.set_grad_checkpointing(True)
    motion, onset = torch.randn(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    loss, grads = _step(plain, motion, onset)
    loss_c, grads_c = _step(checked, motion, onset)
    assert loss_c == pytest.approx(loss, rel=1e-6)
    assert grads.keys() == grads_c.keys() and len(grads) == len(list(plain.parameters()))
    for key in grads:
        torch.testing.assert_close(grads_c[key], grads[key], rtol=1e-5, atol=1e-6, msg=key)
    # running statistics moved once, as without checkpointing (a plain torch checkpoint moves them twice)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(checked.state_dict()[key], value, rtol=1e-6, atol=1e-7, msg=key)


def test_checkpointed_recomputes_during_backward():
    calls = []
    layer = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    layer[0].register_forward_hook(lambda *_: calls.append(1))
    before = layer[1].running_mean.clone()
    x = torch.randn(8, 4, requires_grad=True)
    checkpointed(layer, x).sum().backward()
    assert len(calls) == 2  # forward, then recomputation in backward
    expected = 0.9 * before + 0.1 * x.detach().matmul(layer[0].weight.T).add(layer[0].bias).mean(0)
    torch.testing.assert_close(layer[1].running_mean, expected.detach())
    assert layer[1].num_batches_tracked.item() == 1
