"""Where a release keeps its frames: the subject-folder search below `dataset.root`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

SEARCH_DEPTH = 3  # levels below dataset.root searched for the subject folders
SEARCH_FOLDERS = 2000  # folders looked at, at most: the search stops before it lists frame files at scale


def locate_root(root: Path, names: Iterable[str], depth: int = SEARCH_DEPTH) -> Path:
    """The folder at most `depth` levels below `root` holding the most of `names` as subfolders
    (case-insensitively), shallowest first: releases unpack with extra levels (CAS(ME)^3's
    `part_A/data/part_A/spNO.1`). `root` itself when it holds any, or when none is found (the
    rows' errors then name it)."""
    wanted = {n.lower() for n in names}
    level, seen = [root], 0
    for _ in range(depth + 1):
        scored = [(len(wanted & {c.lower() for c in _subfolders(f)}), f) for f in level]
        best = max(scored, key=lambda s: s[0], default=(0, root))
        if best[0]:
            return best[1]
        seen += len(level)
        level = [f / c for f in level for c in sorted(_subfolders(f))][: max(0, SEARCH_FOLDERS - seen)]
    return root


def folder_names(cells: Iterable[object], name: Callable[[object], str]) -> set[str]:
    """The top-level folder names the rows point at (`name` of each cell; unreadable cells skipped)."""
    names = set()
    for cell in cells:
        try:
            names.add(name(cell))
        except ValueError:
            continue
    return names


def _subfolders(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
