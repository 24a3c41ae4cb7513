"""Test-only re-creation of the official MMNet module's structure (github.com/muse1998/MMNet).

Written from scratch for the tests (the official repository is not vendored). It reproduces

* the module tree of ``CASME2_5.MMNet`` - module and parameter names, shapes and registration,
  so ``state_dict()`` has the same keys/shapes as the official one, including the modules the
  official forward never uses (``pos``, ``head``, ``timeembed``, ``vit_pos.cls_token``,
  ``vit_pos.head``, ``vit_pos.to_Mask``, and parameter-free ones such as ``avgpool``);
* the official forward computation: ``forward(x1, ..., x9, if_shuffle)`` uses only the onset
  ``x1`` and the apex ``x5``: ``main_branch(conv_act(x5 - x1), vit_pos(resize(x1)))``;
* the official initialisation (not needed for the equivalence test, kept for fidelity).

Sources mirrored: ``CA_block.py`` (CABlock, ResNet, resnet18_pos_attention with layers
[1, 1, 1, 1]), ``PC_module.py`` (VisionTransformer_POS with embed 512, depth 2, 4 heads, MLP
ratio 4, qkv bias, LayerNorm eps 1e-6, drop 0, drop-path 0) and ``CASME2_5.py`` (MMNet).
The official attention also computes variances of q, k, v that it never uses; omitted here.

``antialias`` selects how ``torchvision.transforms.Resize([14, 14])`` treats tensors: the
official code ran with torchvision < 0.17, where tensor resizing was NOT antialiased (False,
the default here); torchvision >= 0.17 antialiases by default (True).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.transforms import Resize


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


# ----------------------------------------------------------------------- CA_block.py


class OfficialCABlock(nn.Module):
    """``CA_block.CABlock``: takes and returns the tuple (features, previous map, flag)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv1x1(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attn = nn.Sequential(nn.Conv2d(2, 1, kernel_size=1, stride=1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
        self.downsample = downsample
        self.stride = stride
        self.planes = planes

    def forward(self, inputs):
        x, prev_map, apply_map = inputs
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        y = self.relu(y + shortcut)
        pooled = torch.cat([torch.mean(y, dim=1, keepdim=True), torch.max(y, dim=1, keepdim=True)[0]], dim=1)
        amap = self.attn(pooled)
        if prev_map is not None:
            amap = prev_map * amap
        amap = amap.repeat(1, self.planes, 1, 1)
        if apply_map:
            y = y * amap
        return y, amap[:, 0, :, :].unsqueeze(1), True


class OfficialMainBranch(nn.Module):
    """``CA_block.ResNet`` as built by ``resnet18_pos_attention()``: one CA block per stage."""

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.inplanes = 128
        self.conv1 = nn.Conv2d(180, 128, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=2, stride=2)  # never used
        self.layer1 = self._stage(128, stride=1)
        self.layer2 = self._stage(128, stride=2)
        self.layer3 = self._stage(256, stride=2)
        self.layer4 = self._stage(512, stride=2)
        self.fc = nn.Linear(512 * 196, num_classes)  # official: hard-wired to 5
        self.drop = nn.Dropout(p=0.1)  # never used
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _stage(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        block = OfficialCABlock(self.inplanes, planes, stride, downsample)
        self.inplanes = planes
        return nn.Sequential(block)

    def forward(self, x, pos):
        x = self.relu(self.bn1(self.conv1(x)))
        x, map1, _ = self.layer1((x, None, True))
        first_map = map1
        x, map2, _ = self.layer2((x, self.maxpool(map1), True))
        x, map3, _ = self.layer3((x, self.maxpool(map2), True))
        x, _, _ = self.layer4((x, self.maxpool(map3), True))
        x = torch.flatten(x + pos, 1)
        return self.fc(x), first_map.view(x.size(0), -1)


# ----------------------------------------------------------------------- PC_module.py


class OfficialMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class OfficialAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = self.attn_drop(((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out))


class OfficialBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = OfficialAttention(dim, num_heads)
        self.drop_path = nn.Identity()  # drop_path_rate 0
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = OfficialMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OfficialPatchEmbed(nn.Module):
    def __init__(self, img_size: int = 14, patch_size: int = 1, in_chans: int = 3, embed_dim: int = 512):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        assert tuple(x.shape[-2:]) == self.img_size
        return self.proj(x).flatten(2).transpose(1, 2)


class OfficialViTPos(nn.Module):
    """``PC_module.VisionTransformer_POS(img_size=14, patch_size=1, embed_dim=512, depth=2, ...)``."""

    def __init__(self, embed_dim: int = 512, depth: int = 2, num_heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = OfficialPatchEmbed(14, 1, 3, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))  # never used
        self.pos_embed = nn.Parameter(torch.zeros(1, 196, embed_dim))
        self.pos_drop = nn.Dropout(p=0.0)
        self.blocks = nn.ModuleList(OfficialBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.pre_logits = nn.Identity()
        self.head = nn.Linear(embed_dim, 5)  # never used
        self.to_Mask = nn.Sequential(nn.Linear(embed_dim, 1), nn.Sigmoid())  # never used
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.bias, 0)
                nn.init.constant_(m.weight, 1.0)

    def forward(self, x):
        x = self.pos_drop(self.patch_embed(x) + self.pos_embed)
        for block in self.blocks:
            x = block(x)
        return self.pre_logits(self.norm(x))


# ----------------------------------------------------------------------- CASME2_5.py


class OfficialMMNet(nn.Module):
    """``CASME2_5.MMNet`` (``num_classes`` only changes the main classifier; official: 5)."""

    def __init__(self, num_classes: int = 5, antialias: bool = False):
        super().__init__()
        self.conv_act = nn.Sequential(
            nn.Conv2d(3, 180, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(180),
            nn.ReLU(inplace=True),
        )
        self.pos = nn.Sequential(  # never used
            nn.Conv2d(3, 512, kernel_size=1, stride=1, bias=False), nn.BatchNorm2d(512), nn.ReLU(inplace=True)
        )
        self.vit_pos = OfficialViTPos(embed_dim=512, depth=2, num_heads=4, mlp_ratio=4.0)
        self.resize = Resize([14, 14], antialias=antialias)
        self.main_branch = OfficialMainBranch(num_classes)
        self.head = nn.Sequential(nn.Dropout(p=0.5), nn.Linear(112 * 112, 38, bias=False))  # never used
        self.timeembed = nn.Parameter(torch.zeros(1, 4, 111, 111))  # never used
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))  # never used

    def forward(self, x1, x2, x3, x4, x5, x6, x7, x8, x9, if_shuffle=False):
        # x1: onset, x5: apex; the other frames and the flag are ignored
        b = x1.shape[0]
        pos = self.vit_pos(self.resize(x1)).transpose(1, 2).view(b, 512, 14, 14)
        motion = self.conv_act(x5 - x1)
        logits, _ = self.main_branch(motion, pos)
        return logits
