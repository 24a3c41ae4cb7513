"""Tests of mer.models.mmnet, mer.models.official and the build_model factory."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mer.models import MODEL_NAMES, build_model, model_options
from mer.models.mmnet import MMNet, feature_map_size
from mer.models.official import OFFICIAL_UNUSED, convert_official_state_dict, official_key_to_ours

from .official_structure import OfficialMMNet

SMALL = dict(width_mult=0.25, stem_width=16)  # 32/32/64/128 widths: fast forward passes

MMNET_PARAMS_5_CLASSES = 9_438_841
OFFICIAL_PARAMS_5_CLASSES = 9_970_947


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def inputs(batch: int, channels: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=g), torch.randn(batch, 3, size, size, generator=g)


def randomize_norm_stats(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BN statistics/affine parameters and biases, so eval-mode checks are meaningful."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
            elif isinstance(m, (nn.Linear, nn.Conv2d, nn.LayerNorm)) and m.bias is not None:
                m.bias.add_(0.02 * torch.randn(m.bias.shape, generator=g))
                if isinstance(m, nn.LayerNorm):
                    m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))


# ----------------------------------------------------------------------------- size


def test_parameter_count_matches_reference():
    assert n_params(MMNet(num_classes=5)) == MMNET_PARAMS_5_CLASSES
    assert n_params(build_model("mmnet", num_classes=5, in_channels=3)) == MMNET_PARAMS_5_CLASSES


def test_parameter_count_scales_with_classes_and_channels():
    # fc: 512*196 weights + 1 bias per class; first conv: 180*9 weights per input channel
    assert n_params(MMNet(num_classes=3)) == MMNET_PARAMS_5_CLASSES - 2 * (512 * 196 + 1)
    assert n_params(MMNet(num_classes=5, in_channels=1)) == MMNET_PARAMS_5_CLASSES - 2 * 180 * 9


def test_official_recreation_parameter_count():
    official = OfficialMMNet()
    assert n_params(official) == OFFICIAL_PARAMS_5_CLASSES


@pytest.mark.parametrize("size, expected", [(224, 14), (112, 7), (64, 4)])
def test_feature_map_size(size, expected):
    assert feature_map_size(size) == expected


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("size", [224, 112])
@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_output_shapes(in_channels, size):
    model = MMNet(num_classes=7, in_channels=in_channels, input_size=size, **SMALL).eval()
    motion, onset = inputs(2, in_channels, size)
    side = size // 16
    assert model.pc.pos_embed.shape == (1, side * side, 128)
    assert model.fc.in_features == 128 * side * side
    with torch.no_grad():
        features = model.forward_features(motion, onset)
        logits = model(motion, onset)
    assert features.shape == (2, 128, side, side)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


def test_full_size_112_input_pos_embedding_and_forward():
    model = MMNet(num_classes=5, input_size=112).eval()
    assert model.pc.pos_embed.shape == (1, 49, 512)
    assert model.fc.in_features == 512 * 49
    motion, onset = inputs(1, 3, 112)
    with torch.no_grad():
        assert model(motion, onset).shape == (1, 5)


def test_onset_of_other_resolution_is_resized():
    model = MMNet(num_classes=5, input_size=112, **SMALL).eval()
    motion, _ = inputs(2, 3, 112)
    with torch.no_grad():
        out = model(motion, torch.randn(2, 3, 160, 160))
    assert out.shape == (2, 5)


def test_wrong_inputs_raise_clear_errors():
    model = MMNet(num_classes=5, input_size=112, **SMALL)
    motion, onset = inputs(1, 3, 112)
    with pytest.raises(ValueError, match="motion must be"):
        model(torch.randn(1, 1, 112, 112), onset)
    with pytest.raises(ValueError, match="motion must be"):
        model(torch.randn(1, 3, 96, 96), onset)
    with pytest.raises(ValueError, match="onset"):
        model(motion, None)
    with pytest.raises(ValueError, match="onset"):
        model(motion, torch.randn(1, 1, 112, 112))
    with pytest.raises(ValueError, match="width_mult"):
        MMNet(num_classes=5, width_mult=0)
    with pytest.raises(ValueError, match="num_classes"):
        MMNet(num_classes=0)


def test_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = MMNet(num_classes=5, input_size=112, **SMALL).train()
    motion, onset = inputs(2, 3, 112)
    loss = F.cross_entropy(model(motion, onset), torch.tensor([0, 3]))
    loss.backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert unused == []


# ----------------------------------------------------------------------------- ablations


def test_use_pc_false_has_no_pc_branch_and_ignores_onset():
    with_pc = MMNet(num_classes=5)
    without = MMNet(num_classes=5, use_pc=False)
    assert without.pc is None
    assert not any("pos_embed" in name or name.startswith("pc.") for name, _ in without.named_parameters())
    assert n_params(with_pc) - n_params(without) == n_params(with_pc.pc)

    small = MMNet(num_classes=5, input_size=112, use_pc=False, **SMALL).eval()
    motion, onset = inputs(2, 3, 112)
    with torch.no_grad():
        a = small(motion, onset)
        b = small(motion, torch.randn_like(onset))
        c = small(motion, None)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_output_depends_on_onset_with_pc():
    model = MMNet(num_classes=5, input_size=112, **SMALL).eval()
    motion, onset = inputs(2, 3, 112)
    with torch.no_grad():
        assert not torch.allclose(model(motion, onset), model(motion, torch.randn_like(onset)), atol=1e-4)


def _record_priors(model: MMNet):
    calls = {}

    def hook(name):
        def fn(module, args, output):
            calls[name] = (args[1] if len(args) > 1 else None, output[1])

        return fn

    handles = [getattr(model, f"layer{i}").register_forward_hook(hook(f"layer{i}")) for i in range(1, 5)]
    return calls, handles


def test_attention_prior_is_previous_map_max_pooled():
    model = MMNet(num_classes=5, input_size=112, **SMALL).eval()
    randomize_norm_stats(model)
    calls, handles = _record_priors(model)
    own_maps = {}
    for i in range(1, 5):
        attention = getattr(model, f"layer{i}").attention
        handles.append(attention.register_forward_hook(lambda m, a, out, i=i: own_maps.__setitem__(i, out)))
    motion, onset = inputs(2, 3, 112)
    with torch.no_grad():
        model(motion, onset)
    for h in handles:
        h.remove()
    assert calls["layer1"][0] is None
    torch.testing.assert_close(calls["layer1"][1], own_maps[1])
    for i in (2, 3, 4):
        prior, handed_on = calls[f"layer{i}"]
        # prior = previous block's (combined) map, max-pooled 3x3 / 2 / pad 1 to this block's size
        torch.testing.assert_close(prior, F.max_pool2d(calls[f"layer{i - 1}"][1], 3, stride=2, padding=1))
        # the map handed on is this block's own map times its prior
        torch.testing.assert_close(handed_on, own_maps[i] * prior)
        assert handed_on.shape[1] == 1


def test_attention_prior_false_makes_maps_independent_and_changes_output():
    with_prior = MMNet(num_classes=5, input_size=112, **SMALL).eval()
    randomize_norm_stats(with_prior)
    independent = MMNet(num_classes=5, input_size=112, attention_prior=False, **SMALL).eval()
    independent.load_state_dict(with_prior.state_dict(), strict=True)  # same parameters
    calls, handles = _record_priors(independent)
    motion, onset = inputs(2, 3, 112)
    with torch.no_grad():
        a = with_prior(motion, onset)
        b = independent(motion, onset)
    for h in handles:
        h.remove()
    assert all(prior is None for prior, _ in calls.values())
    assert not torch.allclose(a, b, atol=1e-4)


# ----------------------------------------------------------------------------- official weights


def _official_model(seed: int = 0, antialias: bool = False) -> OfficialMMNet:
    torch.manual_seed(seed)
    official = OfficialMMNet(num_classes=5, antialias=antialias)
    randomize_norm_stats(official, seed + 1)
    return official.eval()


def test_official_key_mapping_drops_exactly_the_unused_modules():
    official = _official_model()
    sd = official.state_dict()
    dropped = {k for k in sd if official_key_to_ours(k) is None}
    expected = {"timeembed", "vit_pos.cls_token"}
    for prefix, module in (
        ("pos", official.pos),
        ("head", official.head),
        ("vit_pos.head", official.vit_pos.head),
        ("vit_pos.to_Mask", official.vit_pos.to_Mask),
    ):
        expected |= {f"{prefix}.{k}" for k in module.state_dict()}
    assert dropped == expected
    assert sum(sd[k].numel() for k in dropped if k in dict(official.named_parameters())) == (
        OFFICIAL_PARAMS_5_CLASSES - MMNET_PARAMS_5_CLASSES
    )
    assert len(OFFICIAL_UNUSED) == 6

    converted = convert_official_state_dict(sd)
    ours = MMNet(num_classes=5).state_dict()
    assert set(converted) == set(ours)
    assert all(converted[k].shape == ours[k].shape for k in ours)
    assert len(converted) == len(sd) - len(dropped)
    # a few spelled-out renames
    assert official_key_to_ours("conv_act.0.weight") == "stem.conv1.weight"
    assert official_key_to_ours("main_branch.bn1.running_var") == "stem.bn2.running_var"
    assert (
        official_key_to_ours("main_branch.layer3.0.attn.1.num_batches_tracked")
        == "layer3.attention.bn.num_batches_tracked"
    )
    assert official_key_to_ours("main_branch.layer2.0.downsample.0.weight") == "layer2.downsample.0.weight"
    assert official_key_to_ours("vit_pos.patch_embed.proj.bias") == "pc.patch_embed.bias"
    assert official_key_to_ours("vit_pos.blocks.1.mlp.fc2.weight") == "pc.blocks.1.mlp.fc2.weight"


def test_official_conversion_rejects_unknown_keys_and_strips_dataparallel_prefix():
    with pytest.raises(KeyError, match="not a key of the official"):
        convert_official_state_dict({"main_branch.layer5.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(KeyError):
        convert_official_state_dict({"something.else": torch.zeros(1)})
    sd = {"module.conv_act.0.weight": torch.zeros(1), "module.timeembed": torch.zeros(1)}
    assert list(convert_official_state_dict(sd)) == ["stem.conv1.weight"]


@pytest.mark.parametrize("antialias", [False, True])
def test_official_weights_give_identical_logits(antialias):
    official = _official_model(antialias=antialias)
    ours = MMNet(num_classes=5, pc_antialias=antialias).eval()
    ours.load_state_dict(convert_official_state_dict(official.state_dict()), strict=True)

    g = torch.Generator().manual_seed(3)
    onset = torch.randn(2, 3, 224, 224, generator=g)
    apex = onset + 0.3 * torch.randn(2, 3, 224, 224, generator=g)
    others = [torch.zeros(1)] * 3  # frames the official forward ignores
    with torch.no_grad():
        expected = official(onset, *others, apex, *others, others[0], False)
        got = ours(apex - onset, onset)
    assert expected.shape == (2, 5)
    assert expected.abs().max() > 0.05  # not a degenerate comparison
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_official_antialias_setting_matters():
    # guards the resize convention: the wrong antialias setting must NOT reproduce the logits
    official = _official_model(antialias=False)
    ours = MMNet(num_classes=5, pc_antialias=True).eval()
    ours.load_state_dict(convert_official_state_dict(official.state_dict()), strict=True)
    onset = torch.randn(1, 3, 224, 224)
    apex = torch.randn(1, 3, 224, 224)
    z = torch.zeros(1)
    with torch.no_grad():
        assert not torch.allclose(
            ours(apex - onset, onset), official(onset, z, z, z, apex, z, z, z, z, False), atol=1e-4
        )


# ----------------------------------------------------------------------------- numerics / layout


def test_bf16_autocast_on_cpu_is_close_to_fp32():
    model = MMNet(num_classes=5, input_size=112).eval()
    randomize_norm_stats(model)
    motion, onset = inputs(2, 3, 112)
    with torch.no_grad():
        reference = model(motion, onset)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(motion, onset)
    assert low.dtype == torch.bfloat16
    assert torch.isfinite(low).all()
    rel = (low.float() - reference).norm() / reference.norm()
    assert rel < 0.05, f"relative error {rel:.4f}"


def test_bf16_autocast_training_step_runs():
    model = MMNet(num_classes=5, input_size=112, **SMALL).train()
    motion, onset = inputs(2, 3, 112)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(motion, onset), torch.tensor([1, 2]))
    loss.backward()
    assert torch.isfinite(loss) and model.fc.weight.grad is not None


def test_channels_last_matches_contiguous():
    model = MMNet(num_classes=5, input_size=112, **SMALL).eval()
    randomize_norm_stats(model)
    motion, onset = inputs(2, 3, 112)
    with torch.no_grad():
        reference = model(motion, onset)
        cl_model = model.to(memory_format=torch.channels_last)
        got = cl_model(motion.to(memory_format=torch.channels_last), onset.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- factory


def test_build_model_names_and_options():
    assert MODEL_NAMES == ("mmnet", "resnet18", "resnet50", "ststnet", "off_apexnet")
    assert isinstance(build_model("MMNet", num_classes=3, input_size=112, **SMALL), MMNet)
    assert model_options("mmnet") == {
        "use_pc",
        "attention_prior",
        "input_size",
        "stem_width",
        "width_mult",
        "pc_antialias",
    }
    assert model_options("resnet18") == {"pretrained"}
    model = build_model("mmnet", num_classes=4, in_channels=1, use_pc=False, attention_prior=False, **SMALL)
    assert (model.num_classes, model.in_channels, model.use_pc, model.attention_prior) == (4, 1, False, False)


def test_build_model_unknown_name_error_message():
    with pytest.raises(ValueError) as excinfo:
        build_model("vgg16", num_classes=5)
    message = str(excinfo.value)
    assert "unknown model name 'vgg16'" in message
    for name in ("mmnet", "resnet18", "resnet50"):
        assert name in message


def test_build_model_unknown_option_error_message():
    with pytest.raises(ValueError, match=r"unknown option\(s\) use_pcc for model 'mmnet'"):
        build_model("mmnet", num_classes=5, use_pcc=False)
    with pytest.raises(ValueError, match="unknown option.*use_pc.*resnet18.*allowed: pretrained"):
        build_model("resnet18", num_classes=5, use_pc=False)


def test_an_mmnet_run_does_not_import_torchvision():
    """torchvision costs ~160 MB in every process that imports it; only the ResNet baselines need it."""
    code = (
        "import sys; from mer.models import build_model; build_model('mmnet', 5, 3); "
        "print('torchvision' in sys.modules); build_model('resnet18', 5, 3); print('torchvision' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
