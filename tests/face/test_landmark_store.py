"""data/landmarks.h5 (mer.face.landmark_store): every field `landmarks` writes reads back for `normalise`."""

from __future__ import annotations

import h5py
import numpy as np

from mer.face import landmark_store
from mer.face.detect import ClipLandmarks
from mer.face.landmarks import Detection


def _clip(i: int, rng: np.random.Generator) -> ClipLandmarks:
    detection = Detection(rng.uniform(0, 300, (68, 2)), np.array([10.0 + i, 20, 200, 220]), 0.5 + i, 1 + i, "hog")
    return ClipLandmarks(f"sub0{i}/EP0{i}", f"/data/sub0{i}/img{i}.jpg", (320 + i, 240), detection, i)


def test_every_field_reads_back_in_clip_order(tmp_path):
    rng = np.random.default_rng(0)
    clips = [_clip(2, rng), _clip(1, rng)]
    template = landmark_store.Template(rng.uniform(0, 256, (68, 2)), "sub02/EP02", (256, 240))
    landmark_store.write(tmp_path / "landmarks.h5", clips, template)

    back = landmark_store.read(tmp_path / "landmarks.h5")
    assert back.sample_ids == ["sub02/EP02", "sub01/EP01"] and back.index() == {"sub02/EP02": 0, "sub01/EP01": 1}
    assert back.frames == ["/data/sub02/img2.jpg", "/data/sub01/img1.jpg"] and back.detectors == ["hog", "hog"]
    assert back.image_sizes.tolist() == [[322, 240], [321, 240]] and back.frame_offsets.tolist() == [2, 1]
    np.testing.assert_array_equal(back.landmarks, np.stack([c.detection.landmarks for c in clips]))
    assert back.boxes[:, 0].tolist() == [12.0, 11.0] and back.scores.tolist() == [2.5, 1.5]
    assert back.faces.tolist() == [3, 2]
    np.testing.assert_array_equal(back.template.landmarks, template.landmarks)
    assert (back.template.source, back.template.canvas) == ("sub02/EP02", (256, 240))
    with h5py.File(tmp_path / "landmarks.h5", "r") as f:  # the dtypes the module docstring promises
        assert f["landmarks"].dtype == np.float64 and f["image_size"].dtype == np.int32
        assert f["template"].attrs["canvas"].dtype == np.int32
