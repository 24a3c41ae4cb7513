"""The reader registry: the formats are those the reader modules declare in their SPEC, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mer.datasets import casme2, generic, ingest, readers
from mer.datasets.records import IngestError

DATASETS = Path(readers.__file__).parent


def test_the_formats_are_the_specs_of_the_reader_modules() -> None:
    declared = {
        path.stem for path in DATASETS.glob("*.py") if re.search(r"^SPEC = ReaderSpec\(", path.read_text(), re.M)
    }
    assert declared == {"casme2", "samm", "mmew", "casme3", "smic", "generic", "precomputed"}
    assert readers.formats() == ("casme2", "casme3", "csv", "mmew", "precomputed", "samm", "smic")
    assert ingest.FORMATS == readers.formats()
    assert readers.reader("csv") is generic and readers.spec("casme2") is casme2.SPEC
    assert ingest.reader_module("csv") == "mer.datasets.generic"
    assert not readers.spec("smic").table and readers.spec("mmew").labels is None


def test_an_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(IngestError, match=r"unknown data-set format 'casme4'; choose one of casme2, casme3, csv, "):
        readers.reader("casme4")


def test_two_readers_of_one_format_are_refused() -> None:
    copy = DATASETS / "casme2_copy_for_test.py"
    copy.write_text(Path(casme2.__file__).read_text())
    try:
        with pytest.raises(IngestError, match="format 'casme2' is declared by both mer.datasets.casme2 and mer"):
            readers.readers()
    finally:
        copy.unlink()
