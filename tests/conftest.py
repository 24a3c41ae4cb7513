"""Shared fixtures: a tiny synthetic data set, generated once per test session.

Under pytest-xdist (`make test` runs one worker per core) each worker, and every stage it runs, gets one
intra-op thread: two workers of two threads each on two cores ran ~20x slower per op than one of one."""

from __future__ import annotations

import os

import pytest

from mer.datasets.long_recordings import LongConfig
from mer.datasets.long_recordings import generate as generate_long
from mer.datasets.synthetic import SyntheticConfig, generate
from mer.face.landmarks import DlibDetector


def pytest_configure(config: pytest.Config) -> None:
    """Runs before any test module imports torch, which reads OMP_NUM_THREADS once."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` tests (whole DVC pipelines, a minute each) first, in their files' order: handed out last,
    one of them would run alone at the end while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


LONG_SMALL = LongConfig(recordings=1, fps=30.0, seconds=8.0, events=3, blinks=2, seed=5)


@pytest.fixture(scope="session")
def long_small(tmp_path_factory, dlib_detector):
    """(root folder, metadata) of one 8-s synthetic long recording at 30 fps: 3 micro-expressions, 2 blinks."""
    root = tmp_path_factory.mktemp("long")
    meta = generate_long(root, LONG_SMALL, dlib_detector)
    return root, meta
