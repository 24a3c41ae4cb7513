"""data/normalised.h5 (mer.face.normalised_store): the transforms `normalise` writes are the ones `crop` reads."""

from __future__ import annotations

import numpy as np

from mer.face import normalised_store
from mer.face.landmark_store import Template
from mer.face.lwm import LWMTransform


def _face(rng: np.random.Generator) -> np.ndarray:
    """68 distinct points on a jittered grid: landmarks enough for an LWM fit."""
    grid = np.stack(np.meshgrid(np.arange(17), np.arange(4)), axis=-1).reshape(-1, 2).astype(float)
    return 10 * grid + rng.normal(0, 1.5, grid.shape)


def test_transforms_landmarks_and_template_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    template = Template(_face(rng), "mean", (256, 256))
    frames = [_face(rng) * 1.1 + 5, _face(rng) * 0.9 - 3]
    transforms = [LWMTransform.fit(template.landmarks, points, 12) for points in frames]
    written = normalised_store.Normalised(["s1/c1", "s2/c1"], transforms, np.stack(frames), template)
    normalised_store.write(tmp_path / "normalised.h5", written)

    back = normalised_store.read(tmp_path / "normalised.h5")
    assert back.sample_ids == ["s1/c1", "s2/c1"] and back.index() == {"s1/c1": 0, "s2/c1": 1}
    np.testing.assert_array_equal(back.landmarks, written.landmarks)
    np.testing.assert_array_equal(back.template.landmarks, template.landmarks)
    assert (back.template.source, back.template.canvas) == ("mean", (256, 256))
    probe = rng.uniform(0, 160, (50, 2))
    for stored, fitted in zip(back.transforms, transforms, strict=True):
        np.testing.assert_array_equal(stored(probe), fitted(probe))


def test_no_clips_reads_back_as_no_clips(tmp_path):
    template = Template(_face(np.random.default_rng(1)), "s1/c1", (200, 180))
    normalised_store.write(tmp_path / "n.h5", normalised_store.Normalised([], [], np.zeros((0, 68, 2)), template))
    back = normalised_store.read(tmp_path / "n.h5")
    assert back.sample_ids == [] and back.transforms == [] and back.landmarks.shape == (0, 68, 2)
    assert back.template.canvas == (200, 180) and back.template.source == "s1/c1"
