"""Load weights trained with the official MMNet code into :class:`mer.models.mmnet.MMNet`.

The official ``MMNet`` module (``CASME2_5.py`` in github.com/muse1998/MMNet) holds the motion
branch as ``main_branch`` (``CA_block.ResNet``), the position-calibration branch as
``vit_pos`` (``PC_module.VisionTransformer_POS``) plus modules its forward never calls.
:func:`convert_official_state_dict` renames its state-dict keys to ours (tensors unchanged)
and drops the unused ones.

Name mapping (official -> ours; ``<i>`` = 1..4, ``<j>`` = transformer block index)::

    conv_act.0.*                        -> stem.conv1.*        first conv 3x3/2, C -> 180
    conv_act.1.*                        -> stem.bn1.*
    main_branch.conv1.*                 -> stem.conv2.*        conv 3x3 180 -> 128
    main_branch.bn1.*                   -> stem.bn2.*
    main_branch.layer<i>.0.conv1.*      -> layer<i>.conv1.*    (likewise bn1, conv2, bn2)
    main_branch.layer<i>.0.downsample.* -> layer<i>.downsample.*
    main_branch.layer<i>.0.attn.0.*     -> layer<i>.attention.conv.*
    main_branch.layer<i>.0.attn.1.*     -> layer<i>.attention.bn.*
    main_branch.fc.*                    -> fc.*
    vit_pos.patch_embed.proj.*          -> pc.patch_embed.*
    vit_pos.pos_embed                   -> pc.pos_embed
    vit_pos.blocks.<j>.*                -> pc.blocks.<j>.*     (norm1, attn.qkv, attn.proj,
                                                                norm2, mlp.fc1, mlp.fc2)
    vit_pos.norm.*                      -> pc.norm.*

Dropped (created by the official code but never used in its forward), see
:data:`OFFICIAL_UNUSED`: ``pos.*`` (1x1 conv + BN), ``head.*`` (AU head, Linear 112*112 -> 38),
``timeembed`` (time embedding), ``vit_pos.cls_token``, ``vit_pos.head.*`` (ViT classifier) and
``vit_pos.to_Mask.*`` (mask head): 532,106 parameters, so 9,970,947 official parameters become
9,438,841 at 5 classes. A leading ``module.`` (``nn.DataParallel`` checkpoints) is stripped.
Any other key raises ``KeyError`` instead of being silently ignored.

Notes: the official classifier is hard-wired to 5 classes, so build ``MMNet(num_classes=5)``
(3 input channels, 224 input, default widths) to load it. The official onset resize ran without
antialiasing (torchvision < 0.17 default for tensors), which is ``MMNet``'s default.

Example::

    sd = torch.load("official_mmnet.pth", map_location="cpu", weights_only=True)
    model = MMNet(num_classes=5)
    model.load_state_dict(convert_official_state_dict(sd), strict=True)
    logits = model(apex - onset, onset)   # the official forward(x1=onset, ..., x5=apex, ...)
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

from torch import Tensor

__all__ = ["OFFICIAL_UNUSED", "official_key_to_ours", "convert_official_state_dict"]

#: Official keys (exact names, or prefixes ending in ".") that belong to unused modules.
OFFICIAL_UNUSED: tuple[str, ...] = (
    "pos.",
    "head.",
    "timeembed",
    "vit_pos.cls_token",
    "vit_pos.head.",
    "vit_pos.to_Mask.",
)

# (official prefix, our prefix); a key is renamed by the first prefix it starts with.
_PREFIX_RENAMES: tuple[tuple[str, str], ...] = (
    ("conv_act.0.", "stem.conv1."),
    ("conv_act.1.", "stem.bn1."),
    ("main_branch.conv1.", "stem.conv2."),
    ("main_branch.bn1.", "stem.bn2."),
    ("main_branch.fc.", "fc."),
    ("vit_pos.patch_embed.proj.", "pc.patch_embed."),
    ("vit_pos.blocks.", "pc.blocks."),
    ("vit_pos.norm.", "pc.norm."),
)
_EXACT_RENAMES: dict[str, str] = {"vit_pos.pos_embed": "pc.pos_embed"}

_LAYER_KEY = re.compile(r"^main_branch\.layer([1-4])\.0\.(conv1|bn1|conv2|bn2|downsample\.[01]|attn\.[01])\.(\w+)$")
_LAYER_PART = {"attn.0": "attention.conv", "attn.1": "attention.bn"}


def _is_unused(key: str) -> bool:
    return any(key.startswith(p) if p.endswith(".") else key == p for p in OFFICIAL_UNUSED)


def official_key_to_ours(key: str) -> str | None:
    """Our name for an official state-dict key, None for an unused module's key.

    Raises:
        KeyError: the key is not part of the official MMNet module.
    """
    if _is_unused(key):
        return None
    if key in _EXACT_RENAMES:
        return _EXACT_RENAMES[key]
    match = _LAYER_KEY.match(key)
    if match:
        layer, part, leaf = match.groups()
        return f"layer{layer}.{_LAYER_PART.get(part, part)}.{leaf}"
    for old, new in _PREFIX_RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    raise KeyError(f"{key!r} is not a key of the official MMNet state dict")


def convert_official_state_dict(state_dict: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Rename an official MMNet state dict to :class:`~mer.models.mmnet.MMNet` keys.

    Tensors are passed through unchanged (not copied); unused modules' keys are dropped.
    """
    keys = list(state_dict)
    strip = "module." if keys and all(k.startswith("module.") for k in keys) else ""
    converted: OrderedDict[str, Tensor] = OrderedDict()
    for key in keys:
        ours = official_key_to_ours(key[len(strip) :])
        if ours is not None:
            converted[ours] = state_dict[key]
    return converted
