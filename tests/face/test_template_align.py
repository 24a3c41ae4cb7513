"""Template building, landmark inversion through the LWM, and the eye-crop geometry."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from mer.face.align import PREVIEW_STEP, crop_affine, normalised_landmarks, preview_warp
from mer.face.lwm import LWMTransform
from mer.face.template import eye_centres, mean_template, procrustes_mean


@pytest.fixture(scope="module")
def face_points(dlib_detector):
    return dlib_detector(skimage.data.astronaut()).landmarks


def _similar(points, angle, scale, shift):
    c, s = np.cos(angle), np.sin(angle)
    return scale * points @ np.array([[c, -s], [s, c]]).T + shift


def test_mean_of_similar_copies_is_the_shape_itself(face_points):
    copies = np.stack(
        [_similar(face_points, a, s, t) for a, s, t in [(0.0, 1.0, (0, 0)), (0.3, 2.0, (50, -20)), (-0.2, 0.5, (7, 9))]]
    )
    template = mean_template(copies, canvas=256, eye_distance=80)
    left, right = eye_centres(template)
    np.testing.assert_allclose(right - left, [80, 0], atol=1e-9)
    np.testing.assert_allclose((left + right) / 2, [128, 102.4], atol=1e-9)
    # same shape as the input up to a similarity: placing the input gives the template
    from mer.face.template import place

    np.testing.assert_allclose(template, place(face_points, 256, 80), atol=1e-6)


def test_procrustes_mean_refuses_empty():
    with pytest.raises(ValueError, match="at least one"):
        procrustes_mean(np.zeros((0, 68, 2)))


def test_normalised_landmarks_invert_the_transform(face_points):
    rng = np.random.default_rng(0)
    template = mean_template(face_points[None], 256, 80)
    clip = face_points + rng.normal(0, 1.5, face_points.shape)
    transform = LWMTransform.fit(template, clip, 12)
    q = normalised_landmarks(transform, clip, template)
    np.testing.assert_allclose(transform(q), clip, atol=1e-4)
    assert np.abs(q - template).max() > 1e-3  # LWM approximates: not simply the template points


def test_crop_places_the_eyes_where_the_rule_says(face_points):
    size, width, above, below = 224, 2.2, 0.6, 1.6
    affine = crop_affine(face_points, size, width, above, below)
    to_grid = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))
    left, right = eye_centres(face_points)
    u_left, v_left, _ = to_grid @ [*left, 1]
    u_right, v_right, _ = to_grid @ [*right, 1]
    assert v_left == pytest.approx(above / (above + below) * size - 0.5, abs=1e-6)
    assert v_right == pytest.approx(v_left, abs=1e-6)  # box aligned with the eye line
    assert u_left == pytest.approx((width / 2 - 0.5) / width * size - 0.5, abs=1e-6)
    assert u_right - u_left == pytest.approx(size / width, abs=1e-6)


def test_preview_samples_the_canvas_at_the_centres_of_its_blocks(face_points):
    """With an identity LWM, preview pixel (u, v) is the frame at the centre of the canvas block it
    covers: bilinear sampling there is the mean of the block (PREVIEW_STEP = 2: 2x2 pixels)."""
    assert PREVIEW_STEP == 2
    image = skimage.data.astronaut()[:400, :500]  # non-square: a swapped (width, height) shows
    transform = LWMTransform.fit(face_points, face_points, 12)
    preview = preview_warp(transform, image, (500, 400))
    assert preview.shape == (200, 250, 3)
    blocks = image.reshape(200, 2, 250, 2, 3).astype(float).mean(axis=(1, 3))
    assert np.abs(preview - blocks).max() <= 1.0
