"""The row-to-clip step of the formats whose clip frames all sit in one folder (CASME II, SAMM, MMEW)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from mer.datasets import frames
from mer.datasets.keyframes import row_key_frames
from mer.datasets.records import Clip, Row, selected_clip


def clip_in_folder(row: Row, cols: Mapping[str, str], apex_repair: str, margin: int, subject: str, clip: str,
                   emotion: str, root: Path, parts: tuple[str, ...], pattern: re.Pattern[str]) -> Clip:
    """The clip of `row` whose frames sit in `root`/`parts`, named by `pattern`: key frames checked
    first, then the frames around them selected."""
    onset, apex, offset, repaired = row_key_frames(row.cells, cols, apex_repair)
    folder = frames.inside(root, *parts)
    available = frames.list_frames(folder, pattern)
    sel = frames.select(available, onset, apex, offset, margin, where=str(folder))
    return selected_clip(row, subject, clip, emotion, sel, available, repaired)
