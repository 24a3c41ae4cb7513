"""Model inputs built from the cached onset/apex windows.

Kinds (param `input.kind`), each giving the main-branch `motion` tensor:

- `difference`: apex - onset RGB in [-1, 1] (the paper), 3 channels.
- `flow`: TV-L1 optical flow onset -> apex (u, v, magnitude; px at the model's input size),
  3 channels, as computed once per clip at the LABELLED frames by the `flow` stage
  (mer.flow; its file: mer.flow_store), so for `flow` training draws no other frame pair.
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
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mer import flow_store
from mer.cache_store import Cache

DEPTH_SCALE = 1e-3  # depth units (mm in CAS(ME)^3) -> m: keeps the difference near the RGB range


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

    `flow`: for a kind that reads the flow stage's file (`flow`), the clips' stored flows (len(indices), 3, S, S)
    from mer.flow_store.
    """
    spec = input_kind(kind)
    spec.check(cache, len(indices), flow)
    if not spec.frames:
        return _precomputed(cache, indices, size)
    positions = {
        name: torch.as_tensor(getattr(cache, f"{name}_position")[indices], dtype=torch.long)
        for name in ("onset", "apex")
    }
    depth: dict[str, Tensor | None] = {name: None for name in ("onset", "apex")}
    if spec.depth:
        depth = {
            name: _resize(torch.from_numpy(cache.load(f"depth_{name}", indices).astype(np.float32)).unsqueeze(2), size)
            for name in depth
        }
    flows = _resize_flow(torch.from_numpy(np.asarray(flow, np.float32)), size) if spec.reads_flow else None
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


def load_fold(cache: Cache, indices: np.ndarray, kind: str, size: int, flow: str | Path | None) -> FoldFrames:
    """`load_frames` for the clips `indices`, reading their stored flows from `flow` (the flow stage's file) when
    `kind` reads it: what a fold, and the attention stage, load for one subject's clips."""
    stored = None
    if input_kind(kind).reads_flow:
        if flow is None:
            raise ValueError(f"input kind {kind!r} needs the flow stage's file (data/flow.h5): pass `flow`")
        stored = flow_store.read(flow, cache, indices)
    return load_frames(cache, indices, kind, size, stored)


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


def in_channels(kind: str, cache: Cache | None = None) -> int:
    """Channels of the motion input for `kind`, for `build_model(..., in_channels=...)`; `precomputed`
    needs the cache, whose stored inputs set them."""
    return input_kind(kind).in_channels(cache)


def motion(batch: Batch, kind: str, out: Tensor | None = None) -> Tensor:
    """The main-branch input (B, in_channels(kind), H, W) of `batch`, written to `out` if given.

    `out` spares mer.training.augment a copy when it assembles a batch a few clips at a time.
    """
    return input_kind(kind).motion(batch, out)


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


class InputKind:
    """One value of `input.kind`: its channels, what a fold loads for it, how it makes the motion from a batch
    and how augmentation warps it. Every rule that depends on the kind is here; the rest of the code asks
    `input_kind(name)`."""

    name: ClassVar[str]
    channels: ClassVar[int]
    frames: ClassVar[bool] = True  # made from (or stored beside) a cache of frames; False: a cache of inputs
    depth: ClassVar[bool] = False  # needs the cache's depth frames
    reads_flow: ClassVar[bool] = False  # its motion is the flow stage's file (input.file data/flow.h5)
    from_rgb: ClassVar[bool] = False  # made from the RGB onset and apex alone: `mer predict` makes it for a new clip

    def in_channels(self, cache: Cache | None) -> int:  # noqa: ARG002 (the cache sets them for precomputed)
        return self.channels

    def check(self, cache: Cache, clips: int, flow: np.ndarray | None) -> None:
        """A clear error when `cache` (and `flow`) cannot give this kind's inputs for `clips` clips."""
        if self.frames != cache.has_frames:
            raise ValueError(
                f"the cache {cache.path} holds precomputed inputs and no frames: use input kind 'precomputed' "
                "(`-S input=precomputed`)"
                if self.frames
                else f"input kind {self.name!r} needs a cache of precomputed inputs (a data set of format "
                f"precomputed); {cache.path} holds frames: use kind {', '.join(FRAME_KINDS[:-1])} or {FRAME_KINDS[-1]}"
            )
        if self.reads_flow and (flow is None or len(flow) != clips):
            raise ValueError(
                f"input kind {self.name!r} needs the stored flow of each of the {clips} clips "
                f"(data/flow.h5 from the flow stage), got {None if flow is None else len(flow)}"
            )
        if self.depth and not cache.has_depth:
            dataset = cache.params.get("dataset", {}).get("name", "unknown")
            raise ValueError(
                f"input kind {self.name!r} needs depth frames, but the cache {cache.path} (data set "
                f"{dataset!r}) has none; use kind 'difference' or 'flow', or a data set with depth "
                f"such as CAS(ME)^3"
            )

    def motion(self, batch: Batch, out: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def warp(self, batch: Batch, affine: Warp, motion: Tensor, onset: Tensor) -> None:
        """Write `batch`'s motion and onset, warped by `affine`, to `motion` and `onset`.

        The frames are warped and the motion taken afterwards: the same as warping the motion, to float rounding.
        """
        rgb = batch.rgb.flatten(1, 2)  # (n, 6, H, W), a view
        if batch.depth_onset is None:
            warped = Batch(rgb=affine.warp(rgb).unflatten(1, (2, 3)), depth_onset=None, depth_apex=None, flow=None)
        else:
            out = affine.warp(torch.cat([rgb, batch.depth_onset, present(batch.depth_apex, "depth")], dim=1))
            warped = Batch(
                rgb=out[:, :6].unflatten(1, (2, 3)), depth_onset=out[:, 6:7], depth_apex=out[:, 7:8], flow=None
            )
        self.motion(warped, out=motion)
        onset.copy_(warped.onset)


class Warp(Protocol):
    """What `InputKind.warp` needs of mer.training.augment's Affine (which imports this module)."""

    def warp(self, images: Tensor, vectors: slice | None = None) -> Tensor: ...


class Difference(InputKind):
    """apex - onset RGB in [-1, 1] (the paper)."""

    name, channels, from_rgb = "difference", 3, True

    def motion(self, batch: Batch, out: Tensor | None = None) -> Tensor:
        return torch.sub(batch.apex, batch.onset, out=out)


def _depth_difference(batch: Batch) -> Tensor:
    return (present(batch.depth_apex, "depth") - present(batch.depth_onset, "depth")) * DEPTH_SCALE


class Depth(InputKind):
    """Depth difference, apex - onset, in depth units x DEPTH_SCALE."""

    name, channels, depth = "depth", 1, True

    def motion(self, batch: Batch, out: Tensor | None = None) -> Tensor:
        depth = _depth_difference(batch)
        return depth if out is None else out.copy_(depth)


class RGBD(InputKind):
    """RGB difference and depth difference stacked."""

    name, channels, depth = "rgbd", 4, True

    def motion(self, batch: Batch, out: Tensor | None = None) -> Tensor:
        return torch.cat([batch.apex - batch.onset, _depth_difference(batch)], dim=1, out=out)


class _Stored(InputKind):
    """Motion stored per clip (FoldFrames.flow), not made from frames."""

    def motion(self, batch: Batch, out: Tensor | None = None) -> Tensor:
        flow = present(batch.flow, self.name)
        return flow if out is None else out.copy_(flow)


class Flow(_Stored):
    """TV-L1 u, v, magnitude of the labelled onset -> apex, from the flow stage; warped as vectors."""

    name, channels, reads_flow = "flow", 3, True

    def warp(self, batch: Batch, affine: Warp, motion: Tensor, onset: Tensor) -> None:
        out = affine.warp(torch.cat([present(batch.flow, "flow"), batch.onset], dim=1), vectors=slice(0, 2))
        motion.copy_(out[:, :3])
        onset.copy_(out[:, 3:])


class Precomputed(_Stored):
    """Inputs made elsewhere, as stored in a cache of inputs (no frames): channels the cache's, never warped
    (nothing says which stored channels are vectors)."""

    name, frames = "precomputed", False

    def in_channels(self, cache: Cache | None) -> int:
        if cache is None:
            raise ValueError("input kind 'precomputed' takes its channels from the cache: pass it")
        return cache.input_channels

    def warp(self, batch: Batch, affine: Warp, motion: Tensor, onset: Tensor) -> None:
        raise ValueError("input kind 'precomputed' is never warped: its channels' meaning is unknown")


KINDS: dict[str, InputKind] = {kind.name: kind for kind in (Difference(), Flow(), Depth(), RGBD(), Precomputed())}
FRAME_KINDS = tuple(name for name, kind in KINDS.items() if kind.frames)  # kinds made from a cache of frames
PRECOMPUTED = Precomputed.name


def input_kind(name: str) -> InputKind:
    """The kind `input.kind` names; a clear error listing the kinds for any other name."""
    if name not in KINDS:
        raise ValueError(f"unknown input kind {name!r}; expected one of: {', '.join(KINDS)}")
    return KINDS[name]
