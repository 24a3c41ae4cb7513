"""Resolve labelled frame numbers to frame files.

A clip keeps the files of its folder whose number lies in [onset - margin, offset + margin]
(the margin gives the cache's onset window room before the onset). Onset, apex and offset
must exist as files; with `nearest=True` (CAS(ME)^3, whose recordings drop frames) each
steps to the nearest frame present instead, ties to the earlier one. An offset the repair rules
guessed (`clamp_offset`) past the last frame on disk becomes that last frame.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FrameSelection:
    numbers: list[int]
    onset: int
    apex: int
    offset: int


def inside(root: Path, *parts: str) -> Path:
    """`root/parts...`, refusing names that escape the data root (e.g. '../x' or absolute paths).

    Any '..' is refused, even one that stays under the root: `sub01/../sub02/EP01` would
    otherwise read another subject's frames under this row's label.
    """
    path = root.joinpath(*parts)
    if any(Path(p).is_absolute() or ".." in Path(p).parts for p in parts) or not _within(path, root):
        raise ValueError(f"path {os.path.join(*parts)!r} escapes the data root {root}")
    return path


def list_frames(folder: Path, pattern: re.Pattern[str]) -> dict[int, Path]:
    """Frame number -> file for the files in `folder` whose name matches `pattern` (group 1 = number)."""
    if not folder.is_dir():
        raise ValueError(f"frame folder missing: {folder}")
    found: dict[int, Path] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match:
                found[int(match.group(1))] = Path(entry.path)
    return found


def select(
    available: Collection[int],
    onset: int,
    apex: int,
    offset: int,
    margin: int,
    nearest: bool = False,
    where: str = "",
    clamp_offset: bool = False,
) -> FrameSelection:
    """The frame numbers a clip keeps, and its key frames (moved to the nearest present if allowed)."""
    if not available:
        raise ValueError(f"no frame files in {where}" if where else "no frame files")
    present = sorted(available)
    if clamp_offset and offset > present[-1] >= apex:
        offset = present[-1]
    keys = []
    for name, number in (("onset", onset), ("apex", apex), ("offset", offset)):
        if number in available:
            keys.append(number)
        elif nearest:
            keys.append(min(present, key=lambda n: (abs(n - number), n)))
        else:
            raise ValueError(f"{name} frame {number} has no file in {where}")
    onset, apex, offset = keys
    numbers = [n for n in present if onset - margin <= n <= offset + margin]
    return FrameSelection(numbers, onset, apex, offset)


def _within(path: Path, root: Path) -> bool:
    resolved, base = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return resolved == base or resolved.startswith(base + os.sep)
