"""Tests of mer.models.off_apexnet: OFF-ApexNet as MEB defines it, on the u, v channels."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mer.models import build_model, model_options
from mer.models.off_apexnet import OffApexNet

# MEB's OffApexNet (meb/models/me_networks.py) at 3 classes: conv 2->6 and 6->16 (3x3, bias),
# fc 7 * 7 * 16 -> 1024 -> 3
MEB_PARAMS_3_CLASSES = (2 * 9 + 1) * 6 + (6 * 9 + 1) * 16 + (784 + 1) * 1024 + (1024 + 1) * 3
assert MEB_PARAMS_3_CLASSES == 807_909


class MebReference(nn.Module):
    """OffApexNet written as MEB writes it (flat modules, 2 input channels)."""

    def __init__(self, num_classes: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, kernel_size=3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=3, stride=1, padding=1)
        self.fc1 = nn.Linear(7 * 7 * 16, 1024)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(self.drop(x.flatten(1))))
        return self.fc(self.drop2(x))


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ours_from_meb(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MEB's keys -> ours, as the module docstring gives them."""
    return {(f"features.{k}" if k.startswith("conv") else f"classifier.{k}"): v for k, v in state.items()}


def flow(batch: int, channels: int = 3, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- size and shape


def test_parameter_count_matches_meb():
    assert n_params(MebReference()) == MEB_PARAMS_3_CLASSES
    assert n_params(OffApexNet(num_classes=3)) == MEB_PARAMS_3_CLASSES
    assert n_params(build_model("off_apexnet", num_classes=3, in_channels=3)) == MEB_PARAMS_3_CLASSES
    # the input channels beyond u, v add nothing; each class one fc row
    assert n_params(OffApexNet(num_classes=5, in_channels=4)) == MEB_PARAMS_3_CLASSES + 2 * 1025


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_equals_meb_with_its_weights(mode):
    """MEB's weights load under the documented key mapping and give MEB's logits (train: same dropout masks)."""
    torch.manual_seed(0)
    reference = MebReference()
    model = OffApexNet(num_classes=3)
    model.load_state_dict(ours_from_meb(reference.state_dict()))
    reference.train(mode == "train")
    model.train(mode == "train")
    motion = flow(8)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = reference(motion[:, :2])
        torch.manual_seed(1)
        got = model(motion)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("in_channels", [2, 3, 4])
def test_shapes_and_onset_is_ignored(in_channels):
    model = OffApexNet(num_classes=5, in_channels=in_channels).eval()
    motion = flow(4, in_channels)
    with torch.no_grad():
        a = model(motion, torch.randn(4, 3, 28, 28))
        b = model(motion, None)
    assert a.shape == (4, 5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("in_channels", [3, 4])
def test_channels_after_u_and_v_are_ignored(in_channels):
    torch.manual_seed(0)
    model = OffApexNet(num_classes=3, in_channels=in_channels).eval()
    motion = flow(4, in_channels)
    changed = motion.clone()
    changed[:, 2:] = 100 * torch.randn_like(changed[:, 2:])
    with torch.no_grad():
        torch.testing.assert_close(model(changed), model(motion), rtol=0, atol=0)
        flipped_u = motion.clone()
        flipped_u[:, 0] *= -1
        assert not torch.allclose(model(flipped_u), model(motion))


def test_fewer_than_two_channels_is_a_clear_error():
    with pytest.raises(ValueError, match=r"horizontal and vertical optical flow.*in_channels must be >= 2, got 1"):
        build_model("off_apexnet", num_classes=3, in_channels=1)


def test_wrong_input_channels_or_size_are_clear_errors():
    model = OffApexNet(num_classes=3, in_channels=3)
    with pytest.raises(ValueError, match="built for 3 input channels, got 2"):
        model(flow(2, channels=2))
    with pytest.raises(ValueError, match=r"OFF-ApexNet takes 28 x 28 inputs.*got \(112, 112\).*input.size: 28"):
        model(flow(2, size=112))


# ----------------------------------------------------------------------------- factory


def test_build_model_by_name_options_and_unknown_option():
    model = build_model("OFF_ApexNet", num_classes=4, in_channels=3, dropout=0.25)
    assert isinstance(model, OffApexNet) and model.classifier.fc.out_features == 4
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    assert [m.p for m in OffApexNet(3).modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert model_options("off_apexnet") == {"dropout"}
    with pytest.raises(ValueError, match=r"unknown option\(s\) width_mult for model 'off_apexnet'; allowed: dropout"):
        build_model("off_apexnet", num_classes=3, width_mult=0.5)


# ----------------------------------------------------------------------------- training


def test_a_few_sgd_steps_reduce_the_loss():
    """On random flow whose class shifts u, measured on the same batch with the same dropout masks."""
    torch.manual_seed(0)
    model = OffApexNet(num_classes=3)
    target = torch.arange(64) % 3
    motion = flow(64, seed=3)
    motion[:, 0] += 0.5 * (target - 1).view(-1, 1, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)

    def loss() -> float:
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(5)
            return F.cross_entropy(model.train()(motion), target).item()

    before = loss()
    for _ in range(20):
        model.train()
        optimiser.zero_grad()
        F.cross_entropy(model(motion), target).backward()
        optimiser.step()
    assert loss() < 0.5 * before
    with torch.no_grad():
        assert F.cross_entropy(model.eval()(motion), target).item() < 0.5 * before


def test_checkpointed_step_matches_the_plain_one():
    torch.manual_seed(0)
    plain = OffApexNet(num_classes=3).train()
    checked = copy.deepcopy(plain)
    checked.set_grad_checkpointing(True)
    motion, target = flow(8), torch.arange(8) % 3
    grads = []
    for model in (plain, checked):
        torch.manual_seed(1)  # the same dropout masks
        F.cross_entropy(model(motion), target).backward()
        grads.append({k: p.grad for k, p in model.named_parameters()})
    for key in grads[0]:
        torch.testing.assert_close(grads[1][key], grads[0][key], rtol=1e-5, atol=1e-7, msg=key)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    model = OffApexNet(num_classes=3).eval()
    copy_ = OffApexNet(num_classes=3)
    copy_.load_state_dict(model.state_dict())
    assert list(copy_.state_dict()) == [
        f"{part}.{layer}.{p}"
        for part, layer in (("features", "conv1"), ("features", "conv2"), ("classifier", "fc1"), ("classifier", "fc"))
        for p in ("weight", "bias")
    ]
    motion = flow(4)
    with torch.no_grad():
        torch.testing.assert_close(copy_.eval()(motion), model(motion), rtol=0, atol=0)


def test_channels_last_gives_the_same_logits():
    """The training loop runs every model channels-last."""
    torch.manual_seed(0)
    model = OffApexNet(num_classes=3).eval()
    motion = flow(4)
    with torch.no_grad():
        reference = model(motion)
        got = model.to(memory_format=torch.channels_last)(motion.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
