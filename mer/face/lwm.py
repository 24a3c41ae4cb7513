"""Local Weighted Mean (LWM) transform, Goshtasby (1988), as MATLAB's ``fitgeotrans(..., 'lwm', N)``.

Faces are registered to a template with a piecewise-smooth warp driven by facial landmarks.
A global polynomial cannot follow local expression changes, while LWM blends many small
2nd-order polynomials and so stays smooth and local.

Conventions
-----------
* ``fixed`` are the template (output) control points, ``moving`` the matching points in the
  clip frame (source). Note the argument order of :meth:`LWMTransform.fit` is
  ``(fixed, moving)``, the reverse of MATLAB's ``fitgeotrans(moving, fixed, ...)``.
* Neighbours, radii and weights live in the fixed space, and every local polynomial maps
  fixed -> moving. The transform is therefore an *inverse map*: evaluate it at output pixel
  coordinates to obtain the source coordinates that ``cv2.remap`` must sample.

Model
-----
For control point ``i`` take its ``N`` nearest control points in fixed space (itself
included); ``radius_i`` is the distance to the farthest of them. A polynomial
``P_i`` in ``[1, x, y, xy, x^2, y^2]`` is fitted to them by ordinary least squares. At a point
``p`` the mapping is ``sum_i W(R_i) P_i(p) / sum_i W(R_i)`` with ``R_i = |p - c_i| / radius_i``
and ``W(R) = 1 - 3R^2 + 2R^3 = (1 - R)^2 (1 + 2R)`` for ``R < 1``, else 0.

Each local fit is solved in a frame centred on its control point and scaled by its radius
(well-conditioned whatever the pixel range) and its coefficients are then re-expressed
exactly in one global frame ``(p - origin) / scale`` (``origin`` = centroid of the fixed
points, ``scale`` = their RMS distance to it). ``coeffs`` are stored in that global frame and
produce moving coordinates in raw pixels. Since quadratics are closed under affine changes of
variables, the model does not depend on these frames; they only serve numerical accuracy.

Fallback
--------
A point outside every circle of influence (all weights zero; MATLAB returns NaN there) is
mapped by the global affine least-squares fit of all control points, fixed -> moving,
stored as the 2x3 matrix ``fallback`` (``moving = fallback @ [x, y, 1]``). The mapping is
discontinuous across the border of the covered region, so callers should use
:meth:`LWMTransform.covered` to measure or report how many output pixels rely on it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

N_COEFFS = 6
"""Number of terms of a full 2nd-order polynomial in two variables."""

RANK_RTOL = 1e-10
"""Singular values below this fraction of the largest (in the local unit frame) count as zero:
such neighbourhoods (near-collinear or near-conic) would amplify landmark noise enormously."""

CHUNK_ELEMENTS = 1 << 16
"""Points x control points evaluated per chunk: 0.5 MB per temporary, small enough to stay in cache."""

_ARRAY_KEYS = ("centers", "radii", "coeffs", "fallback", "origin", "scale", "n_neighbours")


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    """Return ``points`` as a float64 (m, 2) array or raise a ValueError naming the argument."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {array.shape}")
    return array


def _basis(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Quadratic basis ``[1, x, y, xy, x^2, y^2]`` stacked on a new last axis."""
    return np.stack([np.ones_like(x), x, y, x * y, x * x, y * y], axis=-1)


def _affine_basis(linear: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Matrices T with ``basis(X) = T @ basis(u)`` for ``X = linear @ u + shift``.

    Quadratics stay quadratics under an affine change of variables, so a polynomial's
    coefficients can be carried exactly from one frame to another (``c_u = T.T @ c_X``).
    Batched: ``linear`` (..., 2, 2) and ``shift`` (..., 2) give (..., 6, 6).
    """
    linear, shift = np.asarray(linear, dtype=np.float64), np.asarray(shift, dtype=np.float64)
    p, q, r, s = linear[..., 0, 0], linear[..., 0, 1], linear[..., 1, 0], linear[..., 1, 1]
    e, f = shift[..., 0], shift[..., 1]
    one, zero = np.ones_like(e), np.zeros_like(e)
    rows = [
        [one, zero, zero, zero, zero, zero],
        [e, p, q, zero, zero, zero],
        [f, r, s, zero, zero, zero],
        [e * f, p * f + e * r, q * f + e * s, p * s + q * r, p * r, q * s],
        [e * e, 2.0 * p * e, 2.0 * q * e, 2.0 * p * q, p * p, q * q],
        [f * f, 2.0 * r * f, 2.0 * s * f, 2.0 * r * s, r * r, s * s],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _weights(points: np.ndarray, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(m, n) LWM weights ``(1 - R)^2 (1 + 2R)``; clamping R at 1 zeroes them outside the circles.

    Computed in place on two buffers: this is the hot loop of every warp.
    """
    r = np.subtract.outer(points[:, 0], centers[:, 0])
    r *= r
    weights = np.subtract.outer(points[:, 1], centers[:, 1])
    weights *= weights
    r += weights
    np.sqrt(r, out=r)
    r /= radii
    return _profile(r, out=weights)


def _profile(r: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``(1 - R)^2 (1 + 2R)`` of distances `r` in radii, into `out`; `r` is overwritten.
    Clamping R at 1 zeroes the weight outside the circle."""
    np.minimum(r, 1.0, out=r)
    np.subtract(1.0, r, out=out)
    out *= out
    r *= 2.0
    r += 1.0
    out *= r
    return out


@dataclass(frozen=True, eq=False)
class LWMTransform:
    """Fitted LWM inverse map, fixed (template) space -> moving (clip frame) space.

    ``coeffs[i]`` are the coefficients of circle ``i``'s polynomial in the basis
    ``[1, X, Y, XY, X^2, Y^2]`` of ``(X, Y) = (p - origin) / scale``, giving moving (x, y) in
    pixels. ``fallback`` is the global affine fit used where no circle covers a point.
    """

    centers: np.ndarray  # (n, 2) fixed-space control points
    radii: np.ndarray  # (n,) radius of each circle of influence
    coeffs: np.ndarray  # (n, 6, 2) polynomial coefficients in the global normalised frame
    fallback: np.ndarray  # (2, 3) affine, raw fixed -> raw moving
    origin: np.ndarray  # (2,) centre of the global normalised frame
    scale: float  # unit length of the global normalised frame
    n_neighbours: int  # N used by the fit, kept for provenance

    def __post_init__(self) -> None:
        """Freeze float64 copies and check shapes, so loaded data cannot be silently wrong."""
        centers = _as_points(self.centers, "centers")
        n = centers.shape[0]
        expected = {
            "radii": (n,),
            "coeffs": (n, N_COEFFS, 2),
            "fallback": (2, 3),
            "origin": (2,),
        }
        arrays = {"centers": centers}
        for name, shape in expected.items():
            array = np.asarray(getattr(self, name), dtype=np.float64)
            if array.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
            arrays[name] = array
        for name, array in arrays.items():
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} contains non-finite values")
            array = array.copy()
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        if not np.all(arrays["radii"] > 0):
            raise ValueError("radii must be positive")
        scale = float(self.scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "n_neighbours", operator.index(self.n_neighbours))

    @classmethod
    def fit(cls, fixed: np.ndarray, moving: np.ndarray, n_neighbours: int = 12) -> LWMTransform:
        """Fit the LWM map template -> frame from matching control points.

        ``fixed``: (n, 2) template points; ``moving``: (n, 2) matching clip-frame points;
        ``n_neighbours``: N, the points per local fit (itself included), 6 <= N <= n.
        """
        fixed = _as_points(fixed, "fixed")
        moving = _as_points(moving, "moving")
        if fixed.shape != moving.shape:
            raise ValueError(f"fixed and moving must have the same shape, got {fixed.shape} and {moving.shape}")
        if not (np.all(np.isfinite(fixed)) and np.all(np.isfinite(moving))):
            raise ValueError("control points must be finite (found NaN or inf)")
        n = fixed.shape[0]
        n_neighbours = operator.index(n_neighbours)
        if n_neighbours < N_COEFFS:
            raise ValueError(f"n_neighbours must be >= {N_COEFFS} for a 2nd-order polynomial, got {n_neighbours}")
        if n_neighbours > n:
            raise ValueError(f"n_neighbours ({n_neighbours}) must not exceed the number of control points ({n})")

        origin = fixed.mean(axis=0)
        scale = float(np.sqrt(np.mean(np.sum((fixed - origin) ** 2, axis=1))))
        distances = np.linalg.norm(fixed[:, None, :] - fixed[None, :, :], axis=-1)
        order = np.argsort(distances, axis=1, kind="stable")[:, :n_neighbours]  # row i: i's N nearest
        radii = np.take_along_axis(distances, order[:, -1:], axis=1)[:, 0]
        # every local fit at once, in a frame centred on its control point and scaled by its radius
        local = (fixed[order] - fixed[:, None, :]) / np.where(radii > 0, radii, 1.0)[:, None, None]
        design = _basis(local[..., 0], local[..., 1])  # (n, N, 6)
        left, singular, right = np.linalg.svd(design, full_matrices=False)
        rank = np.where(radii > 0, np.sum(singular > RANK_RTOL * singular[:, :1], axis=1), 1)
        degenerate = np.flatnonzero(rank < N_COEFFS)
        if degenerate.size:
            i = degenerate[0]
            raise ValueError(
                f"the {n_neighbours} neighbours of control point {i} at {fixed[i].tolist()} are degenerate "
                f"(design matrix rank {rank[i]} < {N_COEFFS}; collinear, coincident or on one conic): "
                "cannot fit a 2nd-order polynomial; use more neighbours or better spread points"
            )
        # least squares through the SVD (full rank, checked above): c = V diag(1/s) U^T y
        projected = np.swapaxes(left, 1, 2) @ moving[order] / singular[:, :, None]
        local_coeffs = np.swapaxes(right, 1, 2) @ projected
        # local frame u = (X - X_i) / step_i, X the global normalised frame
        steps = radii / scale
        to_global = _affine_basis(np.eye(2) / steps[:, None, None], -(fixed - origin) / scale / steps[:, None])
        coeffs = np.swapaxes(to_global, 1, 2) @ local_coeffs

        normalised = (fixed - origin) / scale
        affine_design = np.column_stack([np.ones(n), normalised])
        b = np.linalg.lstsq(affine_design, moving, rcond=None)[0]  # rows: 1, X, Y
        linear = b[1:].T / scale  # (2, 2) acting on raw (x, y)
        fallback = np.column_stack([linear, b[0] - linear @ origin])
        return cls(
            centers=fixed,
            radii=radii,
            coeffs=coeffs,
            fallback=fallback,
            origin=origin,
            scale=scale,
            n_neighbours=n_neighbours,
        )

    def _chunk_weights(self, points: np.ndarray) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """Yield ``(part, weights, active)`` over chunks of ``points``.

        Chunks bound the (chunk, n) temporaries. ``active`` marks the circles reaching the
        chunk's bounding box; only their weights are computed, which makes grids (whose chunks
        are row bands) much cheaper, and the result is unchanged since all others weigh 0.
        """
        if not np.all(np.isfinite(points)):
            raise ValueError("points must be finite (found NaN or inf)")
        step = max(1, CHUNK_ELEMENTS // self.centers.shape[0])
        reach = self.radii[:, None]
        for start in range(0, points.shape[0], step):
            part = slice(start, start + step)
            chunk = points[part]
            low, high = chunk.min(axis=0), chunk.max(axis=0)
            active = np.all((self.centers + reach > low) & (self.centers - reach < high), axis=1)
            yield part, _weights(chunk, self.centers[active], self.radii[active]), active

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Map (m, 2) fixed-space points to (m, 2) moving-space points (float64)."""
        return self.evaluate(points)[0]

    def evaluate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mapped points, covered mask) in one pass: the mask comes from the weights the map needs anyway."""
        points = _as_points(points, "points")
        out = points @ self.fallback[:, :2].T + self.fallback[:, 2]
        covered_all = np.zeros(points.shape[0], dtype=bool)
        flat_coeffs = self.coeffs.reshape(self.centers.shape[0], N_COEFFS * 2)
        for part, weights, active in self._chunk_weights(points):
            total = weights.sum(axis=1)
            covered = total > 0
            covered_all[part] = covered
            if not covered.any():
                continue
            weights, total = weights[covered], total[covered]
            # sum_i W_i * basis . c_i == basis . (sum_i W_i c_i): one matmul instead of n polynomials.
            blended = (weights @ flat_coeffs[active]).reshape(-1, N_COEFFS, 2)
            normalised = (points[part][covered] - self.origin) / self.scale
            basis = _basis(normalised[:, 0], normalised[:, 1])
            out[part][covered] = np.einsum("mk,mkj->mj", basis, blended) / total[:, None]
        return out, covered_all

    def covered(self, points: np.ndarray) -> np.ndarray:
        """(m,) bool: True where some circle of influence covers the point (no fallback used)."""
        points = _as_points(points, "points")
        out = np.zeros(points.shape[0], dtype=bool)
        for part, weights, _ in self._chunk_weights(points):
            out[part] = weights.sum(axis=1) > 0
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for HDF5/NPZ storage; :meth:`from_arrays` restores an identical transform."""
        return {
            "centers": self.centers.copy(),
            "radii": self.radii.copy(),
            "coeffs": self.coeffs.copy(),
            "fallback": self.fallback.copy(),
            "origin": self.origin.copy(),
            "scale": np.asarray(self.scale, dtype=np.float64),
            "n_neighbours": np.asarray(self.n_neighbours, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LWMTransform:
        """Rebuild a transform from :meth:`to_arrays` output (extra keys are ignored)."""
        missing = [key for key in _ARRAY_KEYS if key not in arrays]
        if missing:
            raise ValueError(f"LWM transform arrays are missing keys: {missing}")
        return cls(
            centers=np.asarray(arrays["centers"]),
            radii=np.asarray(arrays["radii"]),
            coeffs=np.asarray(arrays["coeffs"]),
            fallback=np.asarray(arrays["fallback"]),
            origin=np.asarray(arrays["origin"]),
            scale=float(np.asarray(arrays["scale"])),
            n_neighbours=int(np.asarray(arrays["n_neighbours"])),
        )


def sampling_maps(
    transform: LWMTransform,
    grid_to_fixed: np.ndarray,
    size: tuple[int, int],
    coverage: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``map_x, map_y`` of shape ``size = (height, width)`` for ``cv2.remap``.

    Output pixel (u, v) (u = column, v = row) is first mapped to fixed space by the 2x3 affine
    ``grid_to_fixed`` (``fixed = grid_to_fixed @ [u, v, 1]``, e.g. a crop rectangle + resize),
    then by the LWM to the source frame, so ``cv2.remap(frame, map_x, map_y, ...)`` produces the
    registered crop directly without an intermediate template-sized image.
    If given, ``coverage`` (a (height, width) bool array) is filled with ``covered`` at each
    output pixel, at no extra cost (pixels where it is False used the fallback).

    The map is exact (the same sum as :meth:`LWMTransform.evaluate`), but it is accumulated one
    circle at a time over the pixels of that circle's bounding box. On a grid this visits ~1.3x
    the (pixel, circle) pairs that carry weight, where point chunks visit every circle reaching
    a chunk, and each circle's polynomial is carried into grid coordinates once, so the
    per-pixel work is a few broadcast multiply-adds.
    """
    affine = np.asarray(grid_to_fixed, dtype=np.float64)
    if affine.shape != (2, 3) or not np.all(np.isfinite(affine)):
        raise ValueError(f"grid_to_fixed must be a finite (2, 3) affine matrix, got shape {affine.shape}")
    if np.linalg.det(affine[:, :2]) == 0:
        raise ValueError("grid_to_fixed must be invertible: it maps the output grid onto a line")
    height, width = (operator.index(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be (height, width) with positive entries, got {size}")
    if coverage is not None and (coverage.shape != (height, width) or coverage.dtype != bool):
        raise ValueError(
            f"coverage must be a bool array of shape {(height, width)}, got {coverage.dtype} {coverage.shape}"
        )
    numerator, total = _blend_on_grid(transform, affine, height, width)
    covered = total > 0
    fallback = transform.fallback[:, :2] @ affine  # output pixel -> moving, with the grid affine folded in
    u, v = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    maps = []
    for k in range(2):
        mapped = (fallback[k, 1] * v + (fallback[k, 2] + transform.fallback[k, 2]))[:, None] + fallback[k, 0] * u
        np.divide(numerator[k], total, out=mapped, where=covered)
        maps.append(mapped.astype(np.float32))
    if coverage is not None:
        coverage[...] = covered
    return maps[0], maps[1]


def _blend_on_grid(
    transform: LWMTransform, affine: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(sum_i W_i P_i as (2, height, width), sum_i W_i) over the output grid, circle by circle."""
    linear, shift = affine[:, :2], affine[:, 2]
    # each circle's polynomial in the basis of output pixel coordinates (u, v)
    to_grid = _affine_basis(linear / transform.scale, (shift - transform.origin) / transform.scale)
    coeffs = np.einsum("kl,nkj->nlj", to_grid, transform.coeffs)
    inverse = np.linalg.inv(linear)
    centres = (transform.centers - shift) @ inverse.T
    half = transform.radii[:, None] * np.linalg.norm(inverse, axis=1)  # bounding box of each circle's ellipse
    low = np.maximum(np.floor(centres - half), 0).astype(np.int64)
    high = np.minimum(np.ceil(centres + half) + 1, [width, height]).astype(np.int64)
    numerator = np.zeros((2, height, width))
    total = np.zeros((height, width))
    u_all, v_all = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    for i in np.flatnonzero(np.all(high > low, axis=1)):
        (u0, v0), (u1, v1) = low[i], high[i]
        u, v = u_all[u0:u1], v_all[v0:v1]
        weights = _grid_weights(linear / transform.radii[i], (transform.centers[i] - shift) / transform.radii[i], u, v)
        total[v0:v1, u0:u1] += weights
        for k in range(2):
            c = coeffs[i, :, k]  # [1, u, v, uv, u^2, v^2]
            poly = (c[0] + v * (c[2] + c[5] * v))[:, None] + u * ((c[1] + c[3] * v)[:, None] + c[4] * u)
            poly *= weights
            numerator[k, v0:v1, u0:u1] += poly
    return numerator, total


def _grid_weights(linear: np.ndarray, centre: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(len(v), len(u)) weights of one circle, R = |linear @ (u, v) - centre| (both already divided
    by the radius); in place on two buffers, as :func:`_weights`."""
    r = (linear[0, 1] * v - centre[0])[:, None] + linear[0, 0] * u
    weights = (linear[1, 1] * v - centre[1])[:, None] + linear[1, 0] * u
    r *= r
    weights *= weights
    r += weights
    np.sqrt(r, out=r)
    return _profile(r, out=weights)
