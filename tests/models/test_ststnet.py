"""Tests of mer.models.ststnet: STSTNet with its three streams fused into one conv."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mer.models import build_model, model_options
from mer.models.ststnet import STSTNet, TripleStream

# MEB's STSTNet (meb/models/me_networks.py) at 3 classes: 3 convs 3x3 (3 + 5 + 8 filters) with
# bias, 3 BatchNorms, fc 5 * 5 * 16 -> 3
MEB_PARAMS_3_CLASSES = (3 * 9 + 1) * 16 + 2 * 16 + 400 * 3 + 3
assert MEB_PARAMS_3_CLASSES == 1683


class ThreeStreamReference(nn.Module):
    """STSTNet written as MEB writes it: three separate conv/BatchNorm streams, concatenated."""

    def __init__(self, in_channels: int = 3, num_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 3, kernel_size=3, padding=2)
        self.conv2 = nn.Conv2d(in_channels, 5, kernel_size=3, padding=2)
        self.conv3 = nn.Conv2d(in_channels, 8, kernel_size=3, padding=2)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(3), nn.BatchNorm2d(5), nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2, padding=0)
        self.dropout = nn.Dropout(p=0.5)
        self.fc = nn.Linear(5 * 5 * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        streams = [
            self.dropout(self.maxpool(bn(F.relu(conv(x)))))
            for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3))
        ]
        return self.fc(self.avgpool(torch.cat(streams, 1)).flatten(1))


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def reference_from(model: STSTNet) -> ThreeStreamReference:
    """A three-stream reference holding `model`'s weights, sliced per TripleStream.BRANCHES."""
    reference = ThreeStreamReference(model.in_channels, model.fc.out_features)
    streams = model.streams
    with torch.no_grad():
        for branch, channels in TripleStream.BRANCHES.items():
            bn = getattr(reference, branch.replace("conv", "bn"))
            conv = getattr(reference, branch)
            conv.weight.copy_(streams.conv.weight[channels])
            conv.bias.copy_(streams.conv.bias[channels])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(getattr(streams.bn, name)[channels])
            bn.num_batches_tracked.copy_(streams.bn.num_batches_tracked)
        reference.fc.load_state_dict(model.fc.state_dict())
    return reference


def randomized(model: STSTNet, seed: int = 1) -> STSTNet:
    """Non-trivial BatchNorm statistics and affine parameters, so that eval-mode checks mean something."""
    g = torch.Generator().manual_seed(seed)
    bn = model.streams.bn
    with torch.no_grad():
        bn.running_mean.copy_(0.1 * torch.randn(16, generator=g))
        bn.running_var.copy_(0.5 + torch.rand(16, generator=g))
        bn.weight.copy_(0.5 + torch.rand(16, generator=g))
        bn.bias.copy_(0.1 * torch.randn(16, generator=g))
        bn.num_batches_tracked.fill_(7)
    return model


def flow(batch: int, channels: int = 3, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


def without_dropout(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    return model


# ----------------------------------------------------------------------------- size and shape


def test_parameter_count_matches_meb():
    assert n_params(ThreeStreamReference()) == MEB_PARAMS_3_CLASSES
    assert n_params(STSTNet(num_classes=3)) == MEB_PARAMS_3_CLASSES
    assert n_params(build_model("ststnet", num_classes=3, in_channels=3)) == MEB_PARAMS_3_CLASSES
    # one filter weight per input channel and stream filter; one fc row per class
    assert n_params(STSTNet(num_classes=5, in_channels=1)) == MEB_PARAMS_3_CLASSES - 2 * 9 * 16 + 2 * 401


def test_branch_mapping_covers_the_fused_channels_in_meb_order():
    channels = [c for s in TripleStream.BRANCHES.values() for c in range(16)[s]]
    assert channels == list(range(16))
    assert [len(range(16)[s]) for s in TripleStream.BRANCHES.values()] == [3, 5, 8]


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_shapes_and_onset_is_ignored(in_channels):
    model = STSTNet(num_classes=5, in_channels=in_channels).eval()
    motion = flow(4, in_channels)
    with torch.no_grad():
        a = model(motion, torch.randn(4, 3, 28, 28))
        b = model(motion, None)
    assert a.shape == (4, 5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_other_input_sizes_are_a_clear_error():
    with pytest.raises(ValueError, match=r"STSTNet takes 28 x 28 inputs.*got \(112, 112\).*input.size: 28"):
        STSTNet(num_classes=3)(flow(2, size=112))


@pytest.mark.parametrize("num_classes,in_channels", [(0, 3), (3, 0), (2.5, 3)])
def test_invalid_sizes_are_rejected(num_classes, in_channels):
    with pytest.raises(ValueError, match="must be a positive integer"):
        STSTNet(num_classes=num_classes, in_channels=in_channels)


# ----------------------------------------------------------------------------- the fused streams are MEB's three


def test_fused_equals_three_streams_in_eval_mode():
    torch.manual_seed(0)
    model = randomized(STSTNet(num_classes=3)).eval()
    reference = reference_from(model).eval()
    motion = flow(8)
    with torch.no_grad():
        torch.testing.assert_close(model(motion), reference(motion), rtol=0, atol=1e-6)


def test_fused_equals_three_streams_in_train_mode():
    """Batch statistics, running-statistics update and gradients. Dropout is off: the fused model draws
    one 16-channel mask where the reference draws three, so the same seed gives different masks."""
    torch.manual_seed(0)
    model = without_dropout(randomized(STSTNet(num_classes=3)).train())
    reference = without_dropout(reference_from(model).train())
    motion = flow(8)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out, ref_out = model(motion), reference(motion)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-6)
    F.cross_entropy(out, target).backward()
    F.cross_entropy(ref_out, target).backward()

    streams = model.streams
    for branch, channels in TripleStream.BRANCHES.items():
        conv, bn = getattr(reference, branch), getattr(reference, branch.replace("conv", "bn"))
        for ours, theirs in (
            (streams.conv.weight.grad[channels], conv.weight.grad),
            (streams.conv.bias.grad[channels], conv.bias.grad),
            (streams.bn.weight.grad[channels], bn.weight.grad),
            (streams.bn.bias.grad[channels], bn.bias.grad),
            (streams.bn.running_mean[channels], bn.running_mean),
            (streams.bn.running_var[channels], bn.running_var),
        ):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=branch)
    torch.testing.assert_close(model.fc.weight.grad, reference.fc.weight.grad, rtol=0, atol=1e-6)


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = randomized(STSTNet(num_classes=3))
    motion = flow(8)
    with torch.no_grad():
        first, second = model.train()(motion), model(motion)
        assert not torch.allclose(first, second)
        torch.testing.assert_close(model.eval()(motion), model(motion), rtol=0, atol=0)


# ----------------------------------------------------------------------------- factory


def test_build_model_by_name_and_unknown_option():
    model = build_model("STSTNet", num_classes=4, in_channels=3)
    assert isinstance(model, STSTNet) and model.fc.out_features == 4
    assert model_options("ststnet") == frozenset()
    with pytest.raises(ValueError, match=r"unknown option\(s\) dropout for model 'ststnet'; allowed: \(none\)"):
        build_model("ststnet", num_classes=3, dropout=0.3)


# ----------------------------------------------------------------------------- training


def test_a_few_sgd_steps_reduce_the_loss():
    """On random flow whose class shifts channel 0, measured on the same batch with the same dropout masks."""
    torch.manual_seed(0)
    model = STSTNet(num_classes=3)
    target = torch.arange(64) % 3
    motion = flow(64, seed=3)
    motion[:, 0] += 0.5 * (target - 1).view(-1, 1, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss() -> float:
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(5)
            return F.cross_entropy(copy.deepcopy(model).train()(motion), target).item()

    before = loss()
    for _ in range(20):
        model.train()
        optimiser.zero_grad()
        F.cross_entropy(model(motion), target).backward()
        optimiser.step()
    assert loss() < 0.5 * before


def test_checkpointed_step_matches_the_plain_one():
    torch.manual_seed(0)
    plain = randomized(STSTNet(num_classes=3)).train()
    checked = copy.deepcopy(plain)
    checked.set_grad_checkpointing(True)
    motion, target = flow(8), torch.arange(8) % 3
    grads = []
    for model in (plain, checked):
        torch.manual_seed(1)  # the same dropout masks (the checkpoint replays them in its recomputation)
        F.cross_entropy(model(motion), target).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for key in grads[0]:
        torch.testing.assert_close(grads[1][key], grads[0][key], rtol=1e-5, atol=1e-7, msg=key)
    for key, value in plain.state_dict().items():  # running statistics moved once, as without checkpointing
        torch.testing.assert_close(checked.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    model = randomized(STSTNet(num_classes=3)).eval()
    copy_ = STSTNet(num_classes=3)
    copy_.load_state_dict(model.state_dict())
    assert list(copy_.state_dict()) == [
        "streams.conv.weight",
        "streams.conv.bias",
        "streams.bn.weight",
        "streams.bn.bias",
        "streams.bn.running_mean",
        "streams.bn.running_var",
        "streams.bn.num_batches_tracked",
        "fc.weight",
        "fc.bias",
    ]
    motion = flow(4)
    with torch.no_grad():
        torch.testing.assert_close(copy_.eval()(motion), model(motion), rtol=0, atol=0)


def test_channels_last_gives_the_same_logits():
    """The training loop runs every model channels-last."""
    model = randomized(STSTNet(num_classes=3)).eval()
    motion = flow(4)
    with torch.no_grad():
        reference = model(motion)
        got = model.to(memory_format=torch.channels_last)(motion.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
