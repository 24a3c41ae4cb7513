"""Tests of the torchvision ResNet baselines (mer.models.resnet)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from mer.models import build_model
from mer.models.resnet import ResNetBaseline, adapt_first_conv, resnet18, resnet50


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    """A torchvision resnet18 (1000 classes) state dict saved to a local file (random, no download)."""
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    return path, reference.state_dict()


@pytest.mark.parametrize("in_channels", [1, 3, 4])
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_shapes_and_onset_is_ignored(name, in_channels):
    model = build_model(name, num_classes=5, in_channels=in_channels).eval()
    assert isinstance(model, ResNetBaseline)
    assert model.conv1.in_channels == in_channels
    assert model.fc.out_features == 5
    motion = torch.randn(2, in_channels, 64, 64)
    with torch.no_grad():
        a = model(motion, torch.randn(2, 3, 64, 64))
        b = model(motion, None)
    assert a.shape == (2, 5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_224_input_forward():
    model = resnet18(num_classes=3, in_channels=4).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 4, 224, 224), torch.randn(1, 3, 224, 224)).shape == (1, 3)


def test_parameter_counts_match_torchvision():
    for ours, theirs in (
        (resnet18(1000), torchvision.models.resnet18()),
        (resnet50(1000), torchvision.models.resnet50()),
    ):
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert set(resnet18(5).state_dict()) == set(torchvision.models.resnet18().state_dict())


@pytest.mark.parametrize("in_channels", [1, 4])
def test_pretrained_first_conv_is_mean_repeated(resnet18_weights, in_channels):
    path, original = resnet18_weights
    model = build_model("resnet18", num_classes=5, in_channels=in_channels, pretrained=str(path))
    expected = original["conv1.weight"].mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
    assert model.conv1.weight.shape == (64, in_channels, 7, 7)
    torch.testing.assert_close(model.conv1.weight.detach(), expected, rtol=0, atol=0)
    for c in range(in_channels):  # every input channel gets the same (mean) kernel
        torch.testing.assert_close(model.conv1.weight[:, c].detach(), original["conv1.weight"].mean(dim=1))
    # the rest of the backbone is loaded unchanged; the 1000-class fc is not (5 classes here)
    torch.testing.assert_close(model.layer3[1].conv2.weight.detach(), original["layer3.1.conv2.weight"])
    torch.testing.assert_close(model.bn1.running_var, original["bn1.running_var"])
    assert model.fc.weight.shape == (5, 512)


def test_pretrained_rgb_is_loaded_unchanged_including_fc_when_1000_classes(resnet18_weights):
    path, original = resnet18_weights
    model = resnet18(num_classes=1000, in_channels=3, pretrained=path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, original[key], rtol=0, atol=0, msg=key)


def test_adapted_rgb_weights_give_same_response_to_grey_input(resnet18_weights):
    """Sanity of the rule: 3 identical grey channels through RGB conv == mean-kernel x 3 on 1 channel."""
    _, original = resnet18_weights
    w = original["conv1.weight"]
    grey = torch.randn(1, 1, 32, 32)
    rgb_response = torch.nn.functional.conv2d(grey.repeat(1, 3, 1, 1), w)
    adapted = torch.nn.functional.conv2d(grey, adapt_first_conv(w, 1))
    torch.testing.assert_close(3 * adapted, rgb_response, rtol=1e-4, atol=1e-5)


def test_missing_pretrained_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="pretrained weights not found.*nope.pth"):
        build_model("resnet50", num_classes=5, pretrained=missing)


def test_pretrained_file_of_wrong_architecture_is_rejected(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "foo.bar": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="unexpected keys"):
        resnet18(num_classes=5, pretrained=path)


def test_unknown_option_and_name_errors():
    with pytest.raises(ValueError, match="unknown option.*width_mult"):
        build_model("resnet50", num_classes=5, width_mult=0.5)
    with pytest.raises(ValueError, match="unknown model name 'resnet34'.*mmnet, resnet18, resnet50"):
        build_model("resnet34", num_classes=5)


def test_bf16_autocast_and_channels_last():
    model = resnet18(num_classes=5, in_channels=4).eval()
    motion = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        reference = model(motion, None)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(motion, None)
        cl = model.to(memory_format=torch.channels_last)(motion.to(memory_format=torch.channels_last), None)
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).norm() / reference.norm() < 0.05
    torch.testing.assert_close(cl, reference, rtol=1e-4, atol=1e-5)
