"""Shared fixtures: a tiny synthetic data set, generated once per test session."""

from __future__ import annotations

import pytest

from mer.datasets.synthetic import SyntheticConfig, generate
from mer.face.landmarks import DlibDetector

SMALL = SyntheticConfig(subjects=3, classes=("happiness", "surprise"), clips_per_class=1, frames=(16, 20), seed=7)


@pytest.fixture(scope="session")
def dlib_detector() -> DlibDetector:
    return DlibDetector(upsample=1)


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory, dlib_detector):
    """(root folder, metadata) of a 3-subject, 2-class, 1-clip-per-class synthetic set."""
    root = tmp_path_factory.mktemp("synthetic")
    meta = generate(root, SMALL, dlib_detector)
    return root, meta
