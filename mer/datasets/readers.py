"""The reader registry: a data-set format is read by the module of mer/datasets that declares it in its `SPEC`.

Each reader module states at its top level `SPEC = ReaderSpec(...)`: the format name `dataset.format` takes,
how the release names its folders and frame files (what `mer check-data` expects when the layout is wrong),
its label vocabulary and the names its table's columns go by. The registry finds the readers by that line in
their source, so only readers are imported, and only when a format is asked for; the format list that ingest
accepts, check-data offers and `mer deps` follows (mer/deps.py) is theirs. Adding a reader is adding its module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from types import ModuleType

from mer.datasets.records import IngestError

PACKAGE = Path(__file__).parent
DECLARES = re.compile(r"^SPEC = ReaderSpec\(", re.MULTILINE)  # how a reader module declares itself


@dataclass(frozen=True)
class ReaderSpec:
    """What a reader reads: its format, the release's naming and label columns."""

    format: str  # the value of dataset.format
    folders: str  # the release's subject-folder naming, as check-data explains it
    frames: str  # its frame-file naming
    labels: frozenset[str] | None = None  # the release's emotion labels (lower-cased): ingest rejects others as typos
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # role -> names the table's column goes by
    sheets: tuple[str | int, ...] = (0,)  # the workbook's sheet: the first of these it has
    table: bool = True  # False: labelled by folder (SMIC), `dataset.labels` names no table


def readers() -> dict[str, ModuleType]:
    """Format -> its reader module, for every module of mer/datasets declaring a SPEC, sorted by format."""
    found: dict[str, ModuleType] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if not DECLARES.search(path.read_text()):
            continue
        module = import_module(f"{__package__}.{path.stem}")
        fmt = module.SPEC.format
        if fmt in found:
            raise IngestError(f"format {fmt!r} is declared by both {found[fmt].__name__} and {module.__name__}")
        found[fmt] = module
    return dict(sorted(found.items()))


def formats() -> tuple[str, ...]:
    return tuple(readers())


def reader(fmt: str) -> ModuleType:
    """The module that reads data-set format `fmt`."""
    found = readers()
    if fmt not in found:
        raise IngestError(f"unknown data-set format {fmt!r}; choose one of {', '.join(found)}")
    return found[fmt]


def reader_module(fmt: str) -> str:
    """The name of the module that reads `fmt` (for mer/deps.py, which lists it as a dep of the ingest stages)."""
    return reader(fmt).__name__


def spec(fmt: str) -> ReaderSpec:
    spec: ReaderSpec = reader(fmt).SPEC
    return spec
