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


def _local_to_global(shift: np.ndarray, step: float) -> np.ndarray:
    """Matrix T with ``basis(u) = T @ basis(X)`` for the local frame ``u = (X - shift) / step``."""
    a, b = shift
    t2 = step * step
    return np.array(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [-a / step, 1.0 / step, 0.0, 0.0, 0.0, 0.0],
            [-b / step, 0.0, 1.0 / step, 0.0, 0.0, 0.0],
            [a * b / t2, -b / t2, -a / t2, 1.0 / t2, 0.0, 0.0],
            [a * a / t2, -2.0 * a / t2, 0.0, 0.0, 1.0 / t2, 0.0],
            [b * b / t2, 0.0, -2.0 * b / t2, 0.0, 0.0, 1.0 / t2],
        ]
    )


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
    np.minimum(r, 1.0, out=r)
    np.subtract(1.0, r, out=weights)
    weights *= weights
    r *= 2.0
    r += 1.0
    weights *= r
    return weights


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
        radii = np.empty(n)
        coeffs = np.empty((n, N_COEFFS, 2))
        for i in range(n):
            order = np.argsort(distances[i], kind="stable")[:n_neighbours]
            radius = distances[i, order[-1]]
            if radius > 0:
                local = (fixed[order] - fixed[i]) / radius
                design = _basis(local[:, 0], local[:, 1])
                singular = np.linalg.svd(design, compute_uv=False)
                rank = int(np.sum(singular > RANK_RTOL * singular[0]))
            else:
                rank = 1
            if rank < N_COEFFS:
                raise ValueError(
                    f"the {n_neighbours} neighbours of control point {i} at {fixed[i].tolist()} are degenerate "
                    f"(design matrix rank {rank} < {N_COEFFS}; collinear, coincident or on one conic): "
                    "cannot fit a 2nd-order polynomial; use more neighbours or better spread points"
                )
            local_coeffs = np.linalg.lstsq(design, moving[order], rcond=None)[0]
            to_global = _local_to_global((fixed[i] - origin) / scale, radius / scale)
            coeffs[i] = to_global.T @ local_coeffs
            radii[i] = radius

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
    transform: LWMTransform, grid_to_fixed: np.ndarray, size: tuple[int, int],
    coverage: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``map_x, map_y`` of shape ``size = (height, width)`` for ``cv2.remap``.

    Output pixel (u, v) (u = column, v = row) is first mapped to fixed space by the 2x3 affine
    ``grid_to_fixed`` (``fixed = grid_to_fixed @ [u, v, 1]``, e.g. a crop rectangle + resize),
    then by the LWM to the source frame, so ``cv2.remap(frame, map_x, map_y, ...)`` produces the
    registered crop directly without an intermediate template-sized image.
    If given, ``coverage`` (a (height, width) bool array) is filled with ``covered`` at each
    output pixel, at no extra cost (pixels where it is False used the fallback).
    """
    affine = np.asarray(grid_to_fixed, dtype=np.float64)
    if affine.shape != (2, 3) or not np.all(np.isfinite(affine)):
        raise ValueError(f"grid_to_fixed must be a finite (2, 3) affine matrix, got shape {affine.shape}")
    height, width = (operator.index(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be (height, width) with positive entries, got {size}")
    if coverage is not None and (coverage.shape != (height, width) or coverage.dtype != bool):
        raise ValueError(f"coverage must be a bool array of shape {(height, width)}, got {coverage.dtype} {coverage.shape}")
    map_x = np.empty((height, width), np.float32)
    map_y = np.empty((height, width), np.float32)
    u = np.arange(width, dtype=np.float64)
    rows_per_band = max(1, CHUNK_ELEMENTS // width)
    for top in range(0, height, rows_per_band):  # row bands keep float64 temporaries small for full frames
        v = np.arange(top, min(top + rows_per_band, height), dtype=np.float64)
        grid = np.column_stack([np.tile(u, v.size), np.repeat(v, width)])
        source, covered = transform.evaluate(grid @ affine[:, :2].T + affine[:, 2])
        source = source.reshape(v.size, width, 2)
        map_x[top : top + v.size] = source[..., 0]
        map_y[top : top + v.size] = source[..., 1]
        if coverage is not None:
            coverage[top : top + v.size] = covered.reshape(v.size, width)
    return map_x, map_y
