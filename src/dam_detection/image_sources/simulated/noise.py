"""Cheap smooth random fields: the texture of terrain, land cover, clouds and shorelines.

Two kinds of noise are needed. Canvas noise (:func:`smooth_noise`) is drawn from a generator
for one canvas and upsampled from a coarse random grid, which costs a few milliseconds for a
patch. World noise (:func:`world_noise`) is a function of map coordinates in metres and a seed,
hashed from a lattice, so that the same place gives the same value whichever region or patch
asks for it (the water-occurrence raster relies on it).
"""

from __future__ import annotations

import numpy as np


def _upsample(grid: np.ndarray, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Separable smoothstep interpolation of a coarse grid: two gathers and two blends."""
    rows, cols = shape

    def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
        position = (np.arange(n, dtype=np.float32) + 0.5) / np.float32(scale)
        index = np.floor(position).astype(np.intp)
        frac = position - index
        return index, (frac * frac * (3.0 - 2.0 * frac)).astype(np.float32)

    row_index, row_weight = axis(rows)
    col_index, col_weight = axis(cols)
    upper, lower = grid[row_index], grid[row_index + 1]
    by_rows = upper + (lower - upper) * row_weight[:, None]
    left, right = by_rows[:, col_index], by_rows[:, col_index + 1]
    return left + (right - left) * col_weight[None, :]


def smooth_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    scale_px: float,
    octaves: int = 1,
    persistence: float = 0.5,
) -> np.ndarray:
    """Smooth noise of roughly unit standard deviation and zero mean.

    Args:
        rng: Random generator (consumed).
        shape: ``(rows, cols)`` of the output.
        scale_px: Feature size of the first octave in pixels.
        octaves: Octaves summed, each half the size of the previous one.
        persistence: Amplitude ratio between successive octaves.

    Returns:
        float32 array of ``shape``.
    """
    rows, cols = shape
    total = np.zeros(shape, dtype=np.float32)
    amplitude, norm, scale = 1.0, 0.0, float(scale_px)
    for _ in range(octaves):
        scale = max(scale, 1.0)
        grid_rows = int(np.ceil(rows / scale)) + 2
        grid_cols = int(np.ceil(cols / scale)) + 2
        grid = rng.standard_normal((grid_rows, grid_cols), dtype=np.float32)
        total += np.float32(amplitude) * _upsample(grid, shape, scale)
        norm += amplitude**2
        amplitude *= persistence
        scale /= 2.0
    # Interpolated unit-variance lattice values keep about 0.6 of their standard deviation.
    return total / np.float32(np.sqrt(norm) * 0.6)


def _lattice_values(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Pseudo-random values in [-1, 1] for integer lattice points, a pure function of the inputs."""
    h = (ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    )
    h ^= np.uint64(seed & 0xFFFFFFFF) * np.uint64(0x165667B19E3779F9)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


def world_noise(
    x_m: np.ndarray, y_m: np.ndarray, seed: int, scale_m: float, octaves: int = 3
) -> np.ndarray:
    """Value noise defined everywhere on a map, from coordinates in metres.

    Args:
        x_m: Easting-like coordinates in metres (any shape).
        y_m: Northing-like coordinates, same shape.
        seed: World seed.
        scale_m: Lattice spacing of the first octave in metres.
        octaves: Octaves summed (each half the spacing, half the amplitude).

    Returns:
        float64 array of the input shape, roughly in [-1, 1].
    """
    total = np.zeros(np.shape(x_m), dtype=np.float64)
    amplitude, norm, scale = 1.0, 0.0, float(scale_m)
    with np.errstate(over="ignore"):
        for octave in range(octaves):
            gx = np.asarray(x_m, dtype=np.float64) / scale
            gy = np.asarray(y_m, dtype=np.float64) / scale
            x0, y0 = np.floor(gx), np.floor(gy)
            fx, fy = gx - x0, gy - y0
            # Smoothstep weights hide the lattice.
            wx, wy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
            ix = (x0.astype(np.int64) + (1 << 40)).astype(np.uint64)
            iy = (y0.astype(np.int64) + (1 << 40)).astype(np.uint64)
            octave_seed = seed * 7919 + octave
            v00 = _lattice_values(ix, iy, octave_seed)
            v10 = _lattice_values(ix + np.uint64(1), iy, octave_seed)
            v01 = _lattice_values(ix, iy + np.uint64(1), octave_seed)
            v11 = _lattice_values(ix + np.uint64(1), iy + np.uint64(1), octave_seed)
            top = v00 + (v10 - v00) * wx
            bottom = v01 + (v11 - v01) * wx
            total += amplitude * (top + (bottom - top) * wy)
            norm += amplitude
            amplitude *= 0.5
            scale /= 2.0
    return total / norm
