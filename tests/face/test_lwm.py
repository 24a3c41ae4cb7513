"""Tests for the Local Weighted Mean transform (mer.face.lwm) on synthetic 68-point faces."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from skimage import data

from mer.face import lwm
from mer.face.lwm import LWMTransform, sampling_maps

IDENTITY_GRID = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def face_points(seed: int = 0, jitter: float = 1.5, offset: tuple[float, float] = (60.0, 40.0)) -> np.ndarray:
    """68 iBUG-300W-like landmarks in a ~200x250 px face region, jittered from a fixed seed."""
    rng = np.random.default_rng(seed)
    a = np.linspace(-0.47 * np.pi, 0.47 * np.pi, 17)
    jaw = np.column_stack([100 + 95 * np.sin(a), 110 + 125 * np.cos(a)])
    t = np.linspace(0.15 * np.pi, 0.85 * np.pi, 5)
    brow_l = np.column_stack([57 - 33 * np.cos(t), 78 - 12 * np.sin(t)])
    brow_r = np.column_stack([143 - 33 * np.cos(t), 78 - 12 * np.sin(t)])
    bridge = np.column_stack([np.full(4, 100.0), [98.0, 115.0, 132.0, 150.0]])
    nostrils = np.column_stack([[82.0, 91.0, 100.0, 109.0, 118.0], [160.0, 164.0, 166.0, 164.0, 160.0]])
    e = np.array([1.0, 0.75, 0.25, 0.0, -0.25, -0.75]) * np.pi
    eye_l = np.column_stack([60 + 17 * np.cos(e), 100 - 7 * np.sin(e)])
    eye_r = np.column_stack([140 + 17 * np.cos(e), 100 - 7 * np.sin(e)])
    m = np.pi - np.arange(12) * np.pi / 6
    mouth_outer = np.column_stack([100 + 38 * np.cos(m), 200 - 17 * np.sin(m)])
    i = np.pi - np.arange(8) * np.pi / 4
    mouth_inner = np.column_stack([100 + 26 * np.cos(i), 200 - 6 * np.sin(i)])
    points = np.vstack([jaw, brow_l, brow_r, bridge, nostrils, eye_l, eye_r, mouth_outer, mouth_inner])
    assert points.shape == (68, 2)
    return points + np.asarray(offset) + rng.normal(0.0, jitter, points.shape)


def grid_around(points: np.ndarray, step: float, margin: float = 20.0) -> np.ndarray:
    """(m, 2) grid of (x, y) covering the bounding box of ``points`` plus a margin."""
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    ys, xs = np.mgrid[low[1] : high[1] : step, low[0] : high[0] : step]
    return np.column_stack([xs.ravel(), ys.ravel()])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def random_affine(rng: np.random.Generator) -> np.ndarray:
    linear = np.eye(2) + rng.normal(0.0, 0.1, (2, 2))
    return np.column_stack([linear, rng.normal(0.0, 20.0, 2)])


def quadratic_basis(points: np.ndarray) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    return np.column_stack([np.ones_like(x), x, y, x * y, x * x, y * y])


def random_quadratic(rng: np.random.Generator) -> np.ndarray:
    """(6, 2) coefficients in raw pixels: near-identity plus bends of tens of pixels over the face."""
    coeffs = np.zeros((6, 2))
    coeffs[0] = rng.normal(0.0, 20.0, 2)
    coeffs[1:3] = np.eye(2) + rng.normal(0.0, 0.1, (2, 2))
    coeffs[3:] = rng.normal(0.0, 5e-4, (3, 2))
    return coeffs


def smooth_warp(points: np.ndarray) -> np.ndarray:
    """A non-polynomial deformation, so neighbouring local fits genuinely disagree."""
    x, y = points[:, 0], points[:, 1]
    return np.column_stack([x + 6.0 * np.sin(y / 23.0), y + 5.0 * np.cos(x / 19.0)])


def naive_lwm(fixed: np.ndarray, moving: np.ndarray, n_neighbours: int, point: np.ndarray) -> np.ndarray:
    """Goshtasby's LWM at one point written plainly: raw coordinates, one control point at a time."""
    numerator = np.zeros(2)
    denominator = 0.0
    for i in range(len(fixed)):
        distances = np.sqrt(np.sum((fixed - fixed[i]) ** 2, axis=1))
        order = np.argsort(distances, kind="stable")
        neighbours = order[:n_neighbours]
        radius = distances[order[n_neighbours - 1]]
        r = np.sqrt(np.sum((point - fixed[i]) ** 2)) / radius
        if r >= 1.0:
            continue
        coeffs = np.linalg.lstsq(quadratic_basis(fixed[neighbours]), moving[neighbours], rcond=None)[0]
        weight = 1.0 - 3.0 * r**2 + 2.0 * r**3
        numerator += weight * (quadratic_basis(point[None, :]) @ coeffs)[0]
        denominator += weight
    assert denominator > 0, "reference called outside every circle"
    return numerator / denominator


def affine_lstsq(fixed: np.ndarray, moving: np.ndarray, points: np.ndarray) -> np.ndarray:
    design = np.column_stack([fixed, np.ones(len(fixed))])
    solution = np.linalg.lstsq(design, moving, rcond=None)[0]
    return np.column_stack([points, np.ones(len(points))]) @ solution


@pytest.mark.parametrize("n_neighbours", [12, 20])
@pytest.mark.parametrize("kind", ["affine", "quadratic"])
def test_reproduces_polynomials_of_degree_two(n_neighbours: int, kind: str) -> None:
    rng = np.random.default_rng(1)
    fixed = face_points()
    if kind == "affine":
        matrix = random_affine(rng)
        truth = lambda p: apply_affine(matrix, p)  # noqa: E731
    else:
        coeffs = random_quadratic(rng)
        truth = lambda p: quadratic_basis(p) @ coeffs  # noqa: E731
    transform = LWMTransform.fit(fixed, truth(fixed), n_neighbours)
    grid = grid_around(fixed, step=1.5)
    inside = transform.covered(grid)
    assert inside.mean() > 0.5
    assert np.abs(truth(grid) - grid).max() > 10  # the warp is far from the identity
    np.testing.assert_allclose(transform(grid[inside]), truth(grid[inside]), rtol=0, atol=1e-6)


def test_noisy_points_are_approximated_not_interpolated() -> None:
    rng = np.random.default_rng(2)
    fixed = face_points()
    moving = apply_affine(random_affine(rng), fixed) + rng.normal(0.0, 1.0, fixed.shape)
    transform = LWMTransform.fit(fixed, moving, 12)
    residual = np.linalg.norm(transform(fixed) - moving, axis=1).mean()
    assert 1e-3 < residual < 2.0


def test_continuous_across_circle_edges() -> None:
    rng = np.random.default_rng(3)
    fixed = face_points()
    moving = smooth_warp(fixed) + rng.normal(0.0, 1.0, fixed.shape)
    transform = LWMTransform.fit(fixed, moving, 12)
    step = 0.01
    xs = np.arange(fixed[:, 0].min() - 10, fixed[:, 0].max() + 10, step)
    checked_pairs = crossings = 0
    for y in np.linspace(fixed[:, 1].min(), fixed[:, 1].max(), 7):
        line = np.column_stack([xs, np.full_like(xs, y)])
        r = np.linalg.norm(line[:, None, :] - transform.centers[None], axis=-1) / transform.radii
        # Deep inside some circle the total weight is >= W(0.5) = 0.5, so the blend has a bounded
        # slope; where only thin circle rims overlap it is continuous but arbitrarily steep.
        well_covered = r.min(axis=1) < 0.5
        pair = well_covered[1:] & well_covered[:-1]
        inside = r < 1.0
        crossings += np.sum(np.any(inside[1:] != inside[:-1], axis=1) & pair)
        jumps = np.linalg.norm(np.diff(transform(line), axis=0), axis=1)[pair]
        checked_pairs += pair.sum()
        assert jumps.max() < 3.0 * step, f"seam of {jumps.max():.4f} px for a {step} px step at y={y:.1f}"
    assert checked_pairs > 50_000
    assert crossings > 100  # the lines really cross many circle edges


def test_identity_map_everywhere_and_on_an_image() -> None:
    fixed = face_points(offset=(150.0, 80.0))
    transform = LWMTransform.fit(fixed, fixed.copy(), 12)
    grid = np.vstack([grid_around(fixed, step=3.0, margin=150.0), [[-1e4, 5e3], [3e3, -2e3]]])
    inside = transform.covered(grid)
    assert inside.any() and not inside.all()
    np.testing.assert_allclose(transform(grid), grid, rtol=0, atol=1e-9)

    image = data.astronaut()[:400, :500]  # non-square, so a swapped (w, h) or transposed map shows
    map_x, map_y = sampling_maps(transform, IDENTITY_GRID, image.shape[:2])
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    difference = np.abs(warped.astype(int) - image.astype(int))[1:-1, 1:-1]
    assert difference.max() <= 1


def test_direction_of_the_sampling_map() -> None:
    fixed = face_points()
    moving = fixed + np.array([30.0, -12.0])
    transform = LWMTransform.fit(fixed, moving, 12)
    image = np.zeros((400, 500), np.uint8)
    image[150, 200] = 255
    map_x, map_y = sampling_maps(transform, IDENTITY_GRID, image.shape)
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # out[y, x] == image[y - 12, x + 30]: the dot at (row 150, col 200) lands at (row 162, col 170).
    assert np.unravel_index(np.argmax(out), out.shape) == (162, 170)
    assert out[162, 170] == 255 and np.count_nonzero(out) == 1
    np.testing.assert_array_equal(out[12:, :-30], image[:-12, 30:])


def test_fallback_is_the_global_affine_fit() -> None:
    rng = np.random.default_rng(4)
    fixed = face_points()
    moving = smooth_warp(fixed) + rng.normal(0.0, 1.0, fixed.shape)
    transform = LWMTransform.fit(fixed, moving, 12)
    far = np.array([[-1000.0, -1000.0], [5000.0, 40.0], [0.0, 0.0], [1919.0, 1079.0]])
    assert not transform.covered(far).any()
    np.testing.assert_allclose(transform(far), affine_lstsq(fixed, moving, far), rtol=1e-10, atol=1e-8)
    # Inside, the local fits are used, not the affine.
    assert transform.covered(fixed).all()
    assert np.abs(transform(fixed) - affine_lstsq(fixed, moving, fixed)).max() > 1.0


@pytest.mark.parametrize("n_neighbours", [6, 12, 20])
def test_matches_naive_reference(n_neighbours: int) -> None:
    rng = np.random.default_rng(5)
    fixed = face_points()
    moving = smooth_warp(fixed) + rng.normal(0.0, 1.0, fixed.shape)
    transform = LWMTransform.fit(fixed, moving, n_neighbours)
    candidates = rng.uniform(fixed.min(axis=0), fixed.max(axis=0), (200, 2))
    points = np.vstack([candidates[transform.covered(candidates)][:15], fixed[::9]])
    expected = np.array([naive_lwm(fixed, moving, n_neighbours, p) for p in points])
    np.testing.assert_allclose(transform(points), expected, rtol=1e-9, atol=0)


def test_chunking_and_point_order_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    fixed = face_points()
    transform = LWMTransform.fit(fixed, smooth_warp(fixed), 12)
    grid = grid_around(fixed, step=2.0, margin=60.0)
    whole = transform(grid)
    monkeypatch.setattr(lwm, "CHUNK_ELEMENTS", 68 * 37)  # many chunks, the last one partial
    np.testing.assert_allclose(transform(grid), whole, rtol=0, atol=1e-9)
    shuffle = rng.permutation(len(grid))  # scattered chunks: no circle can be skipped
    np.testing.assert_allclose(transform(grid[shuffle]), whole[shuffle], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(transform.covered(grid[shuffle]), transform.covered(grid)[shuffle])


def test_validation_errors() -> None:
    fixed = face_points()
    moving = fixed + 1.0
    with pytest.raises(ValueError, match=r"n_neighbours must be >= 6"):
        LWMTransform.fit(fixed, moving, 5)
    with pytest.raises(ValueError, match=r"n_neighbours \(69\) must not exceed the number of control points \(68\)"):
        LWMTransform.fit(fixed, moving, 69)
    nan_moving = moving.copy()
    nan_moving[10, 1] = np.nan
    with pytest.raises(ValueError, match=r"finite"):
        LWMTransform.fit(fixed, nan_moving)
    with pytest.raises(ValueError, match=r"same shape.*\(68, 2\).*\(67, 2\)"):
        LWMTransform.fit(fixed, moving[:67])
    with pytest.raises(ValueError, match=r"fixed must have shape \(n, 2\)"):
        LWMTransform.fit(np.column_stack([fixed, fixed[:, 0]]), moving)
    line = np.column_stack([np.arange(68.0), 2.0 * np.arange(68.0) + 5.0])
    with pytest.raises(ValueError, match=r"control point 0 .*rank 3 < 6"):
        LWMTransform.fit(line, line + 1.0)
    # A single far, collinear cluster: only its own neighbourhoods are degenerate, and named.
    cluster = np.column_stack([np.linspace(900.0, 960.0, 6), np.full(6, 700.0)])
    with pytest.raises(ValueError, match=r"control point 68 .*rank 3 < 6"):
        LWMTransform.fit(np.vstack([fixed, cluster]), np.vstack([fixed, cluster]), 6)
    transform = LWMTransform.fit(fixed, moving)
    with pytest.raises(ValueError, match=r"points must be finite"):
        transform(np.array([[100.0, np.nan]]))
    with pytest.raises(ValueError, match=r"points must have shape \(n, 2\)"):
        transform(np.zeros(2))


def test_round_trip_through_npz_and_hdf5(tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(7)
    fixed = face_points()
    transform = LWMTransform.fit(fixed, smooth_warp(fixed) + rng.normal(0.0, 1.0, fixed.shape), 12)
    grid = grid_around(fixed, step=4.0, margin=100.0)  # covered and fallback points

    buffer = io.BytesIO()
    np.savez(buffer, **transform.to_arrays())
    buffer.seek(0)
    with np.load(buffer) as stored:
        from_npz = LWMTransform.from_arrays(dict(stored))
    with h5py.File(tmp_path / "lwm.h5", "w") as handle:
        for key, value in transform.to_arrays().items():
            handle[key] = value
    with h5py.File(tmp_path / "lwm.h5", "r") as handle:
        from_h5 = LWMTransform.from_arrays({key: handle[key][()] for key in handle})

    for restored in (from_npz, from_h5):
        np.testing.assert_array_equal(restored(grid), transform(grid))
        assert restored.n_neighbours == 12 and restored.scale == transform.scale
        for key, value in transform.to_arrays().items():
            np.testing.assert_array_equal(restored.to_arrays()[key], value)
    incomplete = transform.to_arrays()
    del incomplete["radii"]
    with pytest.raises(ValueError, match=r"missing keys: \['radii'\]"):
        LWMTransform.from_arrays(incomplete)


def test_sampling_maps_match_the_transform_on_the_mapped_grid() -> None:
    rng = np.random.default_rng(8)
    fixed = face_points()
    transform = LWMTransform.fit(fixed, smooth_warp(fixed) + rng.normal(0.0, 1.0, fixed.shape), 12)
    height, width, scale, offset = 48, 64, 3.5, np.array([55.0, 95.0])
    grid_to_fixed = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
    map_x, map_y = sampling_maps(transform, grid_to_fixed, (height, width))
    assert map_x.dtype == np.float32 and map_y.dtype == np.float32
    assert map_x.shape == (height, width) and map_y.shape == (height, width)
    v, u = np.mgrid[0:height, 0:width]
    expected = transform(np.column_stack([scale * u.ravel() + offset[0], scale * v.ravel() + offset[1]]))
    np.testing.assert_allclose(map_x, expected[:, 0].reshape(height, width), rtol=0, atol=1e-4)
    np.testing.assert_allclose(map_y, expected[:, 1].reshape(height, width), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match=r"grid_to_fixed must be a finite \(2, 3\)"):
        sampling_maps(transform, np.eye(3), (height, width))


def test_sampling_maps_coverage_equals_covered_on_the_mapped_grid() -> None:
    fixed = face_points()
    transform = LWMTransform.fit(fixed, smooth_warp(fixed), 12)
    height, width = 40, 60
    grid_to_fixed = np.array([[8.0, 0.0, -60.0], [0.0, 8.0, -40.0]])  # reaches well outside the circles
    coverage = np.empty((height, width), bool)
    sampling_maps(transform, grid_to_fixed, (height, width), coverage=coverage)
    v, u = np.mgrid[0:height, 0:width]
    expected = transform.covered(np.column_stack([8.0 * u.ravel() - 60.0, 8.0 * v.ravel() - 40.0]))
    assert 0 < expected.mean() < 1  # both covered and fallback pixels are exercised
    np.testing.assert_array_equal(coverage, expected.reshape(height, width))
    mapped, covered = transform.evaluate(fixed)
    np.testing.assert_array_equal(mapped, transform(fixed))
    assert covered.all()
    with pytest.raises(ValueError, match="coverage must be a bool array of shape"):
        sampling_maps(transform, grid_to_fixed, (height, width), coverage=np.empty((height, width)))


def test_affine_basis_carries_quadratics_exactly() -> None:
    rng = np.random.default_rng(9)
    u = rng.uniform(-50.0, 250.0, (40, 2))
    linear, shift = rng.normal(0.0, 1.0, (3, 2, 2)), rng.normal(0.0, 30.0, (3, 2))
    batched = lwm._affine_basis(linear, shift)
    assert batched.shape == (3, 6, 6)
    for k in range(3):
        x = u @ linear[k].T + shift[k]
        np.testing.assert_allclose(quadratic_basis(x), quadratic_basis(u) @ batched[k].T, rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(lwm._affine_basis(linear[k], shift[k]), batched[k])


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_sampling_maps_equal_the_transform_under_rotated_sheared_grids(seed: int) -> None:
    """Maps are accumulated circle by circle; they must equal evaluating every pixel, covered or not."""
    rng = np.random.default_rng(seed)
    fixed = face_points()
    transform = LWMTransform.fit(fixed, smooth_warp(fixed) + rng.normal(0.0, 1.0, fixed.shape), 12)
    angle = rng.uniform(-0.6, 0.6)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotation @ np.array([[rng.uniform(0.8, 2.5), rng.uniform(-0.3, 0.3)], [0.0, rng.uniform(0.8, 2.5)]])
    height, width = 150, 170
    # the grid's centre on the face's, so the grid holds covered and fallback pixels
    shift = fixed.mean(axis=0) - linear @ np.array([width / 2, height / 2]) + rng.normal(0.0, 20.0, 2)
    grid_to_fixed = np.column_stack([linear, shift])
    coverage = np.empty((height, width), bool)
    map_x, map_y = sampling_maps(transform, grid_to_fixed, (height, width), coverage=coverage)
    v, u = np.mgrid[0:height, 0:width]
    points = np.column_stack([u.ravel(), v.ravel()]) @ linear.T + shift
    expected, covered = transform.evaluate(points)
    assert 0.2 < covered.mean() < 0.98
    np.testing.assert_array_equal(coverage, covered.reshape(height, width))
    np.testing.assert_allclose(map_x, expected[:, 0].reshape(height, width), rtol=0, atol=1e-4)
    np.testing.assert_allclose(map_y, expected[:, 1].reshape(height, width), rtol=0, atol=1e-4)


def test_sampling_maps_refuse_a_singular_grid() -> None:
    transform = LWMTransform.fit(face_points(), face_points() + 1.0, 12)
    with pytest.raises(ValueError, match="grid_to_fixed must be invertible"):
        sampling_maps(transform, np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]), (10, 10))
