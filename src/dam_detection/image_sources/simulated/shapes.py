"""Small geometry helpers shared by the feature generators (pixel coordinates, x = column)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def point_at(vertices: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Position and unit tangent of a polyline at arc length ``s``."""
    seg = np.diff(vertices, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cumulative = np.concatenate(([0.0], np.cumsum(lengths)))
    s = float(np.clip(s, 0.0, cumulative[-1]))
    point = np.array(
        [np.interp(s, cumulative, vertices[:, 0]), np.interp(s, cumulative, vertices[:, 1])]
    )
    index = int(np.clip(np.searchsorted(cumulative, s) - 1, 0, len(seg) - 1))
    # Average the direction over a few segments: a wall or a deck spans the local trend.
    lo, hi = max(index - 8, 0), min(index + 9, len(seg))
    tangent = seg[lo:hi].sum(axis=0)
    return point, tangent / max(float(np.hypot(*tangent)), 1e-9)


def stamp_polyline(shape: tuple[int, int], vertices: np.ndarray, half_width: float) -> np.ndarray:
    """Boolean mask of pixels whose centre lies within ``half_width`` of a polyline.

    The polyline is densified and a disc stamped at every vertex, which costs ``O(length)``
    instead of ``O(area)``: roads in a large scene stay cheap.
    """
    rows, cols = shape
    seg = np.diff(vertices, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cumulative = np.concatenate(([0.0], np.cumsum(lengths)))
    targets = np.arange(0.0, cumulative[-1] + 1e-9, 0.4)
    x = np.interp(targets, cumulative, vertices[:, 0])
    y = np.interp(targets, cumulative, vertices[:, 1])
    reach = int(np.ceil(half_width)) + 1
    offsets = np.arange(-reach, reach + 1)
    ox, oy = (grid.ravel() for grid in np.meshgrid(offsets, offsets))
    px = np.floor(x)[:, None].astype(np.int64) + ox[None, :]
    py = np.floor(y)[:, None].astype(np.int64) + oy[None, :]
    near = np.hypot(px + 0.5 - x[:, None], py + 0.5 - y[:, None]) <= half_width
    near &= (px >= 0) & (px < cols) & (py >= 0) & (py < rows)
    mask = np.zeros(shape, bool)
    mask[py[near], px[near]] = True
    return mask


def wandering_line(
    rng: np.random.Generator,
    start: np.ndarray,
    direction: np.ndarray,
    length: float,
    bend: float = 0.15,
    step: float = 8.0,
) -> np.ndarray:
    """A gently bending polyline (roads, levees) starting at ``start`` heading ``direction``."""
    n = max(int(length / step), 1)
    heading = np.arctan2(direction[1], direction[0]) + np.cumsum(
        rng.normal(0.0, bend, n) * (rng.random(n) < 0.3)
    )
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * step
    return np.vstack([start, start + np.cumsum(steps, axis=0)])


def local_frame(
    shape: tuple[int, int], centre: np.ndarray, tangent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of every pixel centre along ``tangent`` (a) and across it (u) from ``centre``."""
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    dx, dy = x + 0.5 - np.float32(centre[0]), y + 0.5 - np.float32(centre[1])
    tx, ty = np.float32(tangent[0]), np.float32(tangent[1])
    return tx * dx + ty * dy, -ty * dx + tx * dy


def sample(array: np.ndarray, x: np.ndarray, y: np.ndarray, outside: float) -> np.ndarray:
    """Bilinear samples of ``array`` at pixel-centre coordinates, ``outside`` off the canvas."""
    return ndimage.map_coordinates(
        array, [np.asarray(y) - 0.5, np.asarray(x) - 0.5], order=1, mode="constant", cval=outside
    )


def component_at(mask: np.ndarray, seeds: list[tuple[int, int]]) -> np.ndarray:
    """The connected parts of ``mask`` that contain any of the ``(row, col)`` seeds."""
    labels, count = ndimage.label(mask)
    rows, cols = mask.shape
    keep = {int(labels[r, c]) for r, c in seeds if 0 <= r < rows and 0 <= c < cols and labels[r, c]}
    if not keep:
        return np.zeros_like(mask)
    if len(keep) == 1:  # the usual case: one comparison is cheaper than a gather
        return labels == keep.pop()
    # A lookup by label is one gather: np.isin sorts the whole label image.
    wanted = np.zeros(count + 1, bool)
    wanted[list(keep)] = True
    return wanted[labels]
