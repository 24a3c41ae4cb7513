"""MMNet: micro-expression recognition with a motion branch and a position branch.

Li, Wang, Fang, Yu, Wang, Gao, "MMNet: Muscle motion-guided network for
micro-expression recognition", IJCAI 2022 (official code: github.com/muse1998/MMNet).
This is an independent re-implementation of the network that the official training
script (``CASME2_5.py``) actually runs; ``mer.models.official`` maps its
state dict onto this module, and ``tests/models`` checks that both give the same
logits.

Architecture (defaults: 224 x 224 input, ``width_mult=1``)::

    motion (B, C, 224, 224)             e.g. apex - onset (C=3), flow (u, v, |f|), depth diff (C=1)
      stem   conv3x3/2 C->180 + BN + ReLU        -> 180 x 112 x 112
             conv3x3   180->128 + BN + ReLU      -> 128 x 112 x 112
      layer1 CABlock 128->128, stride 1          -> 128 x 112 x 112, map A1
      layer2 CABlock 128->128, stride 2          -> 128 x  56 x  56, map A2 (prior: maxpool(A1))
      layer3 CABlock 128->256, stride 2          -> 256 x  28 x  28, map A3 (prior: maxpool(A2))
      layer4 CABlock 256->512, stride 2          -> 512 x  14 x  14       (prior: maxpool(A3))
    onset (B, 3, H, W)
      pc     bilinear resize to 14 x 14, 1x1 "patch" embedding 3->512, + position embedding,
             2 pre-norm transformer blocks (4 heads, MLP x4), LayerNorm  -> 512 x 14 x 14
    fusion   layer4 output + pc output, flatten (512 * 196), Linear -> logits

Continuous Attention (CA) block, as in the official ``CA_block.py``::

    out  = ReLU(BN(conv1x1(ReLU(BN(conv3x3(x))))) + shortcut(x))   # shortcut: 1x1 conv + BN
                                                                     # when stride/width change
    A    = sigmoid(BN(conv1x1([mean_c(out); max_c(out)])))          # computed AFTER the residual
    A    = A * prior            (prior = previous block's A, max-pooled 3x3/2, pad 1; none for layer1)
    out  = out * A ;  A is handed to the next block (the product, not the raw map)

Details taken from the official code (and kept here on purpose):

* the onset is resized with ``torchvision.transforms.Resize([14, 14])`` on a tensor, i.e.
  bilinear, ``align_corners=False``; with the torchvision of the time (< 0.17) tensors were
  resized WITHOUT antialiasing, so ``pc_antialias=False`` is the default. Newer torchvision
  antialiases by default; set ``pc_antialias=True`` to get that behaviour.
* no dropout anywhere in the forward pass (the official dropout modules are never called, and
  the ViT is built with drop rate 0 and drop-path 0); the ViT's final LayerNorm *is* applied.
* LayerNorm eps 1e-6, qkv with bias, exact (erf) GELU, attention scale head_dim ** -0.5.
* initialisation: the first stem conv keeps PyTorch's default init (it lives outside the
  official ResNet class); every other conv of the motion branch uses Kaiming-normal
  (fan_out, ReLU); BN weight 1 / bias 0; the final Linear keeps PyTorch's default init;
  the PC branch uses trunc-normal(std .02) for the position embedding and its Linear weights
  (biases 0), LayerNorm 1 / 0 and PyTorch's default init for the 1x1 patch embedding.

Parameter count with 5 classes at 224 x 224: 9,438,841 (the official module builds
9,970,947 because it also creates modules its forward never uses; see ``official.py``).

Options (all keyword-only):

* ``use_pc`` (True): False removes the position-calibration branch; ``onset`` is then ignored
  (it may be None) and the model has no position-embedding parameters.
* ``attention_prior`` (True): False makes each CA map independent (no max-pooled prior from
  the previous block). It changes no parameter, so state dicts are interchangeable.
* ``input_size`` (224): side of the (square) motion input. The final feature map is
  ``feature_map_size(input_size)`` (14 for 224, 7 for 112); the PC branch resizes the onset
  to that size and its position embedding has that many tokens; the classifier input is
  ``512 * side ** 2``.
* ``stem_width`` (180): output channels of the first stem conv.
* ``width_mult`` (1.0): scales the CA widths 128/128/256/512 (rounded to multiples of 8,
  so 0.25 gives 32/32/64/128); the PC embedding dimension follows the last width. For quick
  runs and tests.
* ``pc_antialias`` (False): see above.

``model.set_grad_checkpointing()`` (as in timm) recomputes the motion branch's activations
during backward instead of keeping them: less memory for more compute (figures in
benchmarks/README.md); BatchNorm statistics stay as without it (:mod:`mer.models.checkpointing`).

The module makes no device or dtype assumptions: it runs on CPU/GPU, under
``torch.autocast`` and with ``channels_last`` inputs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpointing import runner

__all__ = [
    "MMNet",
    "CABlock",
    "ContinuousAttention",
    "PositionCalibration",
    "EncoderBlock",
    "feature_map_size",
]

BASE_WIDTHS: tuple[int, int, int, int] = (128, 128, 256, 512)
LAYER_STRIDES: tuple[int, int, int, int] = (1, 2, 2, 2)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _halve(size: int) -> int:
    """Output side of a 3x3 conv / max-pool with stride 2 and padding 1."""
    return (size - 1) // 2 + 1


def feature_map_size(input_size: int) -> int:
    """Side of the motion branch's final feature map for a square input of ``input_size``.

    One stride-2 stem conv and three stride-2 CA blocks: 224 -> 14, 112 -> 7.
    """
    size = input_size
    for _ in range(1 + sum(s == 2 for s in LAYER_STRIDES)):
        size = _halve(size)
    return size


def _scaled_width(width: int, mult: float, divisor: int = 8) -> int:
    return max(divisor, int(round(width * mult / divisor)) * divisor)


# --------------------------------------------------------------------------- motion branch


class ContinuousAttention(nn.Module):
    """Spatial attention map ``sigmoid(BN(conv1x1([channel mean; channel max])))``: (B,1,H,W)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: Tensor) -> Tensor:
        avg = x.mean(dim=1, keepdim=True)
        peak = x.amax(dim=1, keepdim=True)
        return torch.sigmoid(self.bn(self.conv(torch.cat([avg, peak], dim=1))))


class CABlock(nn.Module):
    """Continuous Attention block: residual conv3x3 -> conv1x1, then a spatial attention map.

    ``forward(x, prior)`` returns ``(out * A, A)`` where ``A`` is this block's map times
    ``prior`` (the previous block's map, already pooled to this block's size) if given.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv1x1(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attention = ContinuousAttention()
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor, prior: Tensor | None = None) -> tuple[Tensor, Tensor]:
        identity = x if self.downsample is None else self.downsample(x)

        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.relu(out + identity)

        attn = self.attention(out)
        if prior is not None:
            attn = attn * prior
        return out * attn, attn


# --------------------------------------------------------------------------- PC branch


class Mlp(nn.Module):
    """Transformer feed-forward: Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (scale ``head_dim ** -0.5``)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"embedding dim {dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, dim))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class PositionCalibration(nn.Module):
    """Position-calibration branch: a shallow ViT over the onset frame, one token per pixel.

    The onset (B, 3, H, W) is resized (bilinear) to ``grid_size`` x ``grid_size``; each pixel is
    a 1x1x3 patch projected to ``embed_dim`` by a 1x1 conv; a learned position embedding is
    added; ``depth`` encoder blocks and a final LayerNorm follow. Output: (B, embed_dim, g, g).
    """

    def __init__(
        self,
        grid_size: int = 14,
        embed_dim: int = 512,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        in_channels: int = 3,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        self.grid_size = grid_size
        self.in_channels = in_channels
        self.antialias = antialias
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, kernel_size=1)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid_size * grid_size, embed_dim))
        self.blocks = nn.ModuleList(EncoderBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, onset: Tensor) -> Tensor:
        if onset.dim() != 4 or onset.shape[1] != self.in_channels:
            raise ValueError(
                f"PC branch expects the onset frame as (B, {self.in_channels}, H, W), got {tuple(onset.shape)}"
            )
        g = self.grid_size
        if onset.shape[-2:] != (g, g):
            onset = F.interpolate(onset, size=(g, g), mode="bilinear", align_corners=False, antialias=self.antialias)
        x = self.patch_embed(onset).flatten(2).transpose(1, 2)  # (B, g*g, D), row-major tokens
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, g, g)


# --------------------------------------------------------------------------- MMNet


class MMNet(nn.Module):
    """MMNet classifier. ``forward(motion, onset) -> logits (B, num_classes)``.

    Args:
        num_classes: number of output classes.
        in_channels: channels of the motion input (3: apex-onset RGB or flow u, v, |f|;
            1: depth difference; 4: RGB-D difference).
        use_pc, attention_prior, input_size, stem_width, width_mult, pc_antialias:
            see the module docstring.
    """

    def __init__(
        self,
        num_classes: int = 5,
        in_channels: int = 3,
        *,
        use_pc: bool = True,
        attention_prior: bool = True,
        input_size: int = 224,
        stem_width: int = 180,
        width_mult: float = 1.0,
        pc_antialias: bool = False,
    ) -> None:
        super().__init__()
        for arg, value in (("num_classes", num_classes), ("in_channels", in_channels), ("stem_width", stem_width)):
            if int(value) != value or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        if not (width_mult > 0 and math.isfinite(width_mult)):
            raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
        if int(input_size) != input_size or input_size < 16:
            raise ValueError(f"input_size must be an integer >= 16, got {input_size!r}")

        self.num_classes = num_classes
        self.in_channels = in_channels
        self.use_pc = use_pc
        self.attention_prior = attention_prior
        self.input_size = input_size
        self.feature_size = feature_map_size(input_size)
        widths = [_scaled_width(w, width_mult) for w in BASE_WIDTHS]
        self.widths: Sequence[int] = tuple(widths)

        self.stem = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(in_channels, stem_width, kernel_size=3, stride=2, padding=1, bias=False)),
                    ("bn1", nn.BatchNorm2d(stem_width)),
                    ("relu1", nn.ReLU(inplace=True)),
                    ("conv2", conv3x3(stem_width, widths[0])),
                    ("bn2", nn.BatchNorm2d(widths[0])),
                    ("relu2", nn.ReLU(inplace=True)),
                ]
            )
        )
        self.layer1 = CABlock(widths[0], widths[0], LAYER_STRIDES[0])
        self.layer2 = CABlock(widths[0], widths[1], LAYER_STRIDES[1])
        self.layer3 = CABlock(widths[1], widths[2], LAYER_STRIDES[2])
        self.layer4 = CABlock(widths[2], widths[3], LAYER_STRIDES[3])
        # brings a CA map to the next (stride-2) block's resolution
        self.prior_pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.pc: PositionCalibration | None = None
        if use_pc:
            self.pc = PositionCalibration(
                grid_size=self.feature_size,
                embed_dim=widths[3],
                depth=2,
                num_heads=4,
                mlp_ratio=4.0,
                antialias=pc_antialias,
            )
        self.fc = nn.Linear(widths[3] * self.feature_size**2, num_classes)
        self.grad_checkpointing = False

        self._init_motion_branch()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the motion branch's activations during backward (less memory, more compute)."""
        self.grad_checkpointing = enable

    def _init_motion_branch(self) -> None:
        # as in the official code: the first stem conv and the fc keep PyTorch's default init
        for name, m in self.named_modules():
            if name.startswith("pc") or name == "stem.conv1":
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _prior(self, attn: Tensor) -> Tensor | None:
        return self.prior_pool(attn) if self.attention_prior else None

    def forward_features(self, motion: Tensor, onset: Tensor | None = None) -> Tensor:
        """Fused feature map (B, 512, s, s) before flattening (s = ``feature_size``)."""
        expected = (self.in_channels, self.input_size, self.input_size)
        if motion.dim() != 4 or tuple(motion.shape[1:]) != expected:
            raise ValueError(
                f"motion must be (B, {expected[0]}, {expected[1]}, {expected[2]}), got {tuple(motion.shape)}"
            )

        run = runner(self.grad_checkpointing)
        x = run(self.stem, motion)
        x, attn = run(self.layer1, x)
        x, attn = run(self.layer2, x, self._prior(attn))
        x, attn = run(self.layer3, x, self._prior(attn))
        x, _ = run(self.layer4, x, self._prior(attn))

        if self.pc is not None:
            if onset is None:
                raise ValueError("this MMNet has a PC branch (use_pc=True): pass the onset frame")
            x = x + self.pc(onset)
        return x

    def forward(self, motion: Tensor, onset: Tensor | None = None) -> Tensor:
        """Logits (B, num_classes) for the motion input and the 3-channel onset frame.

        ``onset`` is only used by the PC branch; it may be None when ``use_pc=False``.
        """
        return self.fc(torch.flatten(self.forward_features(motion, onset), 1))
