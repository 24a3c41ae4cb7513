"""Model inputs built from the cached onset/apex windows.

Kinds (param `input.kind`), each giving the main-branch `motion` tensor:

- `difference`: apex - onset RGB in [-1, 1] (the paper), 3 channels.
- `flow`: TV-L1 optical flow onset -> apex (u, v, magnitude; px at the model's input size),
  3 channels, as computed once per clip at the LABELLED frames by the `flow` stage
  (mer.flow), so for `flow` training draws no other frame pair.
- `depth`: depth difference (apex - onset, in depth units x DEPTH_SCALE), 1 channel.
- `rgbd`: RGB difference and depth difference stacked, 4 channels.
- `precomputed`: the input stored in a cache of precomputed inputs (mer.datasets.precomputed: e.g. MEGC 2019's
  published u, v, optical strain images), as stored, its channels the cache's. Such a cache has no frames:
  the onset is an empty (B, 3, 0, 0) tensor, so only models that ignore it train on these inputs.

The PC branch always gets the onset RGB frame in [0, 1], whatever the kind (for `depth`
too: the report's depth-only variant still calibrates position on the RGB onset).

A fold is held in memory as uint8 windows resized once to the input size; `select` picks
one onset and one apex per clip (the labelled ones at evaluation, random ones in training).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mer.cache import Cache

CHANNELS = {"difference": 3, "flow": 3, "depth": 1, "rgbd": 4}
PRECOMPUTED = "precomputed"  # its channels are the cache's
FRAME_KINDS = tuple(CHANNELS)  # kinds made from (or stored beside) a cache of frames
KINDS = (*FRAME_KINDS, PRECOMPUTED)
STORED = ("flow", PRECOMPUTED)  # kinds whose motion is stored per clip, not made from frames
DEPTH_SCALE = 1e-3  # depth units (mm in CAS(ME)^3) -> m: keeps the difference near the RGB range


def in_channels(kind: str, cache: Cache | None = None) -> int:
    """Channels of the motion input for `kind`, for `build_model(..., in_channels=...)`; `precomputed`
    needs the cache, whose stored inputs set them."""
    _check_kind(kind)
    if kind != PRECOMPUTED:
        return CHANNELS[kind]
    if cache is None:
        raise ValueError("input kind 'precomputed' takes its channels from the cache: pass it")
    return cache.input_channels


def needs_depth(kind: str) -> bool:
    return kind in ("depth", "rgbd")


class _OnsetApex:
    """`onset` and `apex` as views of `rgb`, whose dimension 1 is (onset, apex)."""

    rgb: Tensor

    @property
    def onset(self) -> Tensor:
        return self.rgb[:, 0]

    @property
    def apex(self) -> Tensor:
        return self.rgb[:, 1]


@dataclass(frozen=True)
class FoldFrames(_OnsetApex):
    """Every frame a fold needs, in memory; rows follow the `indices` given to `load_frames`.

    The onset and apex windows are one tensor so that a batch's pairs are one gather (`select`).
    """

    rgb: Tensor  # (n, 2, k, 3, H, W) uint8: onset window, apex window
    onset_position: Tensor  # (n,) long: the labelled frame's place in its window
    apex_position: Tensor
    depth_onset: Tensor | None  # (n, k, 1, H, W) float32, depth units
    depth_apex: Tensor | None
    flow: Tensor | None  # (n, C, H, W) float32 stored motion: u, v, magnitude at the labelled frames, or precomputed

    def __len__(self) -> int:
        return self.rgb.shape[0]

    @property
    def window(self) -> int:
        return self.rgb.shape[2]


@dataclass(frozen=True)
class Batch(_OnsetApex):
    """One onset/apex pair per clip, as float tensors ready for augmentation and `motion`.

    Onset and apex RGB are one (B, 2, 3, H, W) tensor, so that mer.training.augment colours and warps
    both frames in one pass, and viewed as (B, 6, H, W) without a copy.
    """

    rgb: Tensor  # (B, 2, 3, H, W) onset, apex in [0, 1]
    depth_onset: Tensor | None  # (B, 1, H, W)
    depth_apex: Tensor | None
    flow: Tensor | None  # (B, 3, H, W)


def load_frames(cache: Cache, indices: np.ndarray, kind: str, size: int, flow: np.ndarray | None = None) -> FoldFrames:
    """Read the clips `indices` of `cache` and build what `kind` needs at `size` x `size` px.

    `flow`: for kind `flow`, the clips' stored flows (len(indices), 3, S, S) from mer.flow.
    """
    _check_kind(kind)
    if (kind == PRECOMPUTED) != (not cache.has_frames):
        raise ValueError(
            f"the cache {cache.path} holds precomputed inputs and no frames: use input kind 'precomputed' "
            "(`-S input=precomputed`)"
            if kind != PRECOMPUTED
            else f"input kind 'precomputed' needs a cache of precomputed inputs (a data set of format precomputed); "
            f"{cache.path} holds frames: use kind difference, flow, depth or rgbd"
        )
    if kind == PRECOMPUTED:
        return _precomputed(cache, indices, size)
    if kind == "flow" and (flow is None or len(flow) != len(indices)):
        raise ValueError(
            f"input kind 'flow' needs the stored flow of each of the {len(indices)} clips "
            f"(data/flow.h5 from the flow stage), got {None if flow is None else len(flow)}"
        )
    if needs_depth(kind) and not cache.has_depth:
        dataset = cache.params.get("dataset", {}).get("name", "unknown")
        raise ValueError(
            f"input kind {kind!r} needs depth frames, but the cache {cache.path} (data set "
            f"{dataset!r}) has none; use kind 'difference' or 'flow', or a data set with depth "
            f"such as CAS(ME)^3"
        )
    positions = {
        name: torch.as_tensor(getattr(cache, f"{name}_position")[indices], dtype=torch.long)
        for name in ("onset", "apex")
    }
    depth: dict[str, Tensor | None] = {name: None for name in ("onset", "apex")}
    if needs_depth(kind):
        depth = {
            name: _resize(torch.from_numpy(cache.load(f"depth_{name}", indices).astype(np.float32)).unsqueeze(2), size)
            for name in depth
        }
    flows = _resize_flow(torch.from_numpy(np.asarray(flow, np.float32)), size) if kind == "flow" else None
    rgb = torch.empty(len(indices), 2, cache.window, 3, size, size, dtype=torch.uint8)
    for i, name in enumerate(("onset", "apex")):
        resize_uint8(cache.load(name, indices), size, out=rgb[:, i])
    return FoldFrames(
        rgb=rgb,
        onset_position=positions["onset"],
        apex_position=positions["apex"],
        depth_onset=depth["onset"],
        depth_apex=depth["apex"],
        flow=flows,
    )


def _precomputed(cache: Cache, indices: np.ndarray, size: int) -> FoldFrames:
    """Stored inputs, resized (not rescaled: what their values mean is the data set's) to `size`; no frames."""
    n, zero = len(indices), torch.zeros(len(indices), dtype=torch.long)
    stored = _resize(torch.from_numpy(cache.load("motion", indices)), size)
    empty = torch.empty(n, 2, 1, 3, 0, 0, dtype=torch.uint8)
    return FoldFrames(empty, zero, zero, depth_onset=None, depth_apex=None, flow=stored)


def to_unit(pair: Tensor) -> Tensor:
    """uint8 RGB -> float in [0, 1]."""
    return pair.float().div_(255)


def select(
    frames: FoldFrames,
    rows: Tensor,
    onset_at: Tensor | None = None,
    apex_at: Tensor | None = None,
    rgb: Callable[[Tensor], Tensor] = to_unit,
) -> Batch:
    """Clips `rows` with onset/apex taken at window positions `onset_at`/`apex_at` (default: labelled).

    `rgb` turns the uint8 pair (B, 2, 3, H, W) into float in [0, 1]; mer.training.augment passes its colour
    jitter, which folds the /255 into its colour transform so the pixels are converted only once.
    """
    onset_at = frames.onset_position[rows] if onset_at is None else onset_at
    apex_at = frames.apex_position[rows] if apex_at is None else apex_at
    k = frames.window
    at = (rows[:, None] * 2 * k + torch.stack([onset_at, k + apex_at], dim=1)).view(-1)  # in frames.rgb's frames
    pair = frames.rgb.flatten(0, 2).index_select(0, at).view(len(rows), 2, *frames.rgb.shape[-3:])
    return Batch(
        rgb=rgb(pair),
        depth_onset=_pick(frames.depth_onset, rows, onset_at),
        depth_apex=_pick(frames.depth_apex, rows, apex_at),
        flow=None if frames.flow is None else frames.flow[rows],
    )


def motion(batch: Batch, kind: str, out: Tensor | None = None) -> Tensor:
    """The main-branch input (B, in_channels(kind), H, W) of `batch`, written to `out` if given.

    `out` spares mer.training.augment a copy when it assembles a batch a few clips at a time.
    """
    _check_kind(kind)
    if kind in STORED:
        flow = present(batch.flow, kind)
        return flow if out is None else out.copy_(flow)
    if kind == "difference":
        return torch.sub(batch.apex, batch.onset, out=out)
    depth = (present(batch.depth_apex, "depth") - present(batch.depth_onset, "depth")) * DEPTH_SCALE
    if kind == "depth":
        return depth if out is None else out.copy_(depth)
    return torch.cat([batch.apex - batch.onset, depth], dim=1, out=out)


def present(tensor: Tensor | None, what: str) -> Tensor:
    """`tensor`, which a batch holds only when it was built for an input kind that needs `what`."""
    if tensor is None:
        raise ValueError(f"this batch has no {what} frames: it was built for an input kind without them")
    return tensor


def _pick(windows: Tensor | None, rows: Tensor, at: Tensor) -> Tensor | None:
    """Frame `at[i]` of the window of clip `rows[i]` (float windows: depth)."""
    return None if windows is None else windows[rows, at]


def resize_uint8(windows: np.ndarray, size: int, out: Tensor) -> None:
    """(n, k, S, S, 3) uint8 -> `out` (n, k, 3, size, size) uint8, clip by clip to bound memory."""
    clips = torch.from_numpy(windows).permute(0, 1, 4, 2, 3)
    if clips.shape[-1] == size:
        out.copy_(clips)
        return
    for clip, target in zip(clips, out, strict=True):
        target.copy_(_resize(clip.float(), size).round().clamp(0, 255))


def _resize(images: Tensor, size: int) -> Tensor:
    """Antialiased bilinear resize of (..., C, H, W) float images to size x size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    out = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.reshape(*lead, *out.shape[-3:])


def _resize_flow(flow: Tensor, size: int) -> Tensor:
    """Resize (n, 3, S, S) flow fields; vectors and magnitude scale with the image."""
    return _resize(flow, size) * (size / flow.shape[-1])


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown input kind {kind!r}; expected one of: {', '.join(KINDS)}")
