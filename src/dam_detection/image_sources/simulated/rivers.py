"""Rivers and their valleys: centrelines, distance fields and terrain that drains downhill.

A river is a meandering polyline with an arc length ``s`` that grows downstream and a water
level ``h(s) = h0 - slope * s``, so every river flows downhill by construction. Its valley is a
cross-section profile around the centreline; hills noise only reaches the valley walls, which
makes contours (and so reservoir shorelines) wiggle like real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from dam_detection.image_sources.simulated.canvas import Canvas


@dataclass(frozen=True)
class Valley:
    """Shape of a river valley (sampled once per river by :func:`sample_valley`).

    Attributes:
        level_at_origin: Water level in metres where ``s == 0``.
        slope: Drop of the water level per pixel of river length (m/px).
        depth: Height of the valley walls above the river in metres.
        half_width: Distance from the river at which the walls reach ~63 % of ``depth``, px.
        river_width: Width of the water channel in pixels.
        roughness: Amplitude of hills noise on the valley walls, metres.
    """

    level_at_origin: float
    slope: float
    depth: float
    half_width: float
    river_width: float
    roughness: float

    def level(self, s: np.ndarray | float) -> np.ndarray | float:
        """Water level in metres at arc length ``s`` (pixels)."""
        return self.level_at_origin - self.slope * s


def sample_valley(rng: np.random.Generator, kind: str = "any") -> Valley:
    """Draw a valley. ``kind``: ``mountain`` (dams), ``lowland`` (bridges) or ``any``."""
    if kind == "any":
        kind = "mountain" if rng.random() < 0.5 else "lowland"
    if kind == "mountain":
        return Valley(
            level_at_origin=float(rng.uniform(150, 1500)),
            slope=float(rng.uniform(0.03, 0.12)),
            depth=float(rng.uniform(50, 140)),
            half_width=float(rng.uniform(25, 70)),
            river_width=float(rng.uniform(2, 7)),
            roughness=float(rng.uniform(4, 14)),
        )
    return Valley(
        level_at_origin=float(rng.uniform(5, 400)),
        slope=float(rng.uniform(0.005, 0.05)),
        depth=float(rng.uniform(15, 60)),
        half_width=float(rng.uniform(40, 120)),
        river_width=float(rng.uniform(4, 22)),
        roughness=float(rng.uniform(2, 8)),
    )


def meander_path(
    rng: np.random.Generator,
    anchor: tuple[float, float] | np.ndarray,
    heading: float,
    before: float,
    after: float,
    wiggle: float = 0.5,
    straight_near_anchor: float = 0.0,
    step: float = 1.0,
) -> tuple[np.ndarray, float]:
    """A meandering polyline through ``anchor`` with direction ``heading`` there.

    Args:
        rng: Random generator.
        anchor: ``(x, y)`` the path passes through.
        heading: Direction of travel at the anchor, radians (0 = east, pi/2 = south).
        before: Path length before the anchor, pixels.
        after: Path length after the anchor, pixels.
        wiggle: Maximum heading deviation in radians.
        straight_near_anchor: Distance over which the path stays straight around the anchor.
        step: Vertex spacing in pixels.

    Returns:
        ``(vertices, s_anchor)``: ``(n, 2)`` array of ``(x, y)`` and the arc length of the anchor.
    """
    n_before, n_after = int(np.ceil(before / step)), int(np.ceil(after / step))
    s = (np.arange(-n_before, n_after + 1) * step).astype(np.float64)
    # Heading deviation: a sum of a few sinusoids, zero at the anchor.
    deviation = np.zeros_like(s)
    for _ in range(3):
        wavelength = rng.uniform(150, 700)
        phase = rng.uniform(0, 2 * np.pi)
        deviation += rng.uniform(0.3, 1.0) * (
            np.sin(2 * np.pi * s / wavelength + phase) - np.sin(phase)
        )
    deviation *= wiggle / 2.0
    if straight_near_anchor > 0:
        deviation *= 1.0 - np.exp(-((s / straight_near_anchor) ** 2))
    angle = heading + deviation
    dx, dy = np.cos(angle) * step, np.sin(angle) * step
    x = np.concatenate(([0.0], np.cumsum(dx[:-1])))
    y = np.concatenate(([0.0], np.cumsum(dy[:-1])))
    x += anchor[0] - x[n_before]
    y += anchor[1] - y[n_before]
    return np.stack([x, y], axis=1), float(n_before * step)


@dataclass
class RiverField:
    """Per-pixel relation of a canvas to one river centreline.

    Attributes:
        distance: Distance to the centreline in pixels.
        s: Arc length of the nearest centreline point (grows downstream).
        side: Signed side (+1 right of the flow, -1 left).
        tangent: ``(tx, ty)`` of the flow at the nearest centreline point.
    """

    distance: np.ndarray
    s: np.ndarray
    side: np.ndarray
    tangent: tuple[np.ndarray, np.ndarray]


def river_field(shape: tuple[int, int], vertices: np.ndarray, margin: int = 64) -> RiverField:
    """Distance, arc length and side of every pixel with respect to a polyline.

    The polyline is burnt into a padded grid at half resolution and a Euclidean distance
    transform finds each pixel's nearest centreline vertex (a quarter of the work at full
    resolution); the exact distance is then taken to that vertex, so channel edges are
    sub-pixel smooth.
    """
    rows, cols = shape
    dense_vertices = _densify(vertices, 0.5)
    seg = np.diff(dense_vertices, axis=0)
    s_values = np.concatenate(([0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))))
    tangents = np.gradient(dense_vertices, axis=0)
    tangents /= np.maximum(np.hypot(tangents[:, 0], tangents[:, 1]), 1e-9)[:, None]
    coarse_rows = (rows + 2 * margin + 1) // 2
    coarse_cols = (cols + 2 * margin + 1) // 2
    px = (np.floor(dense_vertices[:, 0]).astype(np.int64) + margin) // 2
    py = (np.floor(dense_vertices[:, 1]).astype(np.int64) + margin) // 2
    inside = (px >= 0) & (px < coarse_cols) & (py >= 0) & (py < coarse_rows)
    if not inside.any():
        raise ValueError("the river does not cross the canvas or its margin")
    owner = np.full((coarse_rows, coarse_cols), -1, np.int32)
    owner[py[inside], px[inside]] = np.nonzero(inside)[0]
    iy, ix = ndimage.distance_transform_edt(owner < 0, return_distances=False, return_indices=True)
    coarse = owner[iy, ix]
    # Each coarse cell covers 2 x 2 pixels: a vertex quantity is gathered on the coarse grid
    # (a quarter of the pixels) and spread by two takes along the axes, the same values as a
    # gather at every pixel. Vertex quantities are cast to float32 first (as they end up).
    full_rows = (np.arange(rows) + margin) // 2
    full_cols = (np.arange(cols) + margin) // 2

    def at_pixels(per_vertex: np.ndarray) -> np.ndarray:
        on_coarse = np.take(per_vertex, coarse)
        return np.take(np.take(on_coarse, full_rows, axis=0), full_cols, axis=1)

    # Pixel centres broadcast from one row and one column.
    x = np.arange(cols, dtype=np.float32)[None, :] + np.float32(0.5)
    y = np.arange(rows, dtype=np.float32)[:, None] + np.float32(0.5)
    dx = x - at_pixels(dense_vertices[:, 0].astype(np.float32))
    dy = y - at_pixels(dense_vertices[:, 1].astype(np.float32))
    tx = at_pixels(tangents[:, 0].astype(np.float32))
    ty = at_pixels(tangents[:, 1].astype(np.float32))
    cross = tx * dy - ty * dx
    along = tx * dx + ty * dy
    return RiverField(
        distance=np.hypot(dx, dy),
        s=(at_pixels(s_values) + along).astype(np.float32),
        side=np.where(cross >= 0, np.float32(1.0), np.float32(-1.0)),
        tangent=(tx, ty),
    )


def _densify(vertices: np.ndarray, spacing: float) -> np.ndarray:
    seg = np.diff(vertices, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    s = np.concatenate(([0.0], np.cumsum(lengths)))
    targets = np.arange(0.0, s[-1] + 1e-9, spacing)
    return np.stack(
        [np.interp(targets, s, vertices[:, 0]), np.interp(targets, s, vertices[:, 1])], axis=1
    )


def valley_terrain(field: RiverField, valley: Valley, hills: np.ndarray) -> np.ndarray:
    """Terrain of a valley: the river level plus a cross-section profile plus wall noise.

    Args:
        field: The river's distance field.
        valley: Valley shape.
        hills: Unit noise of the canvas (wiggles the walls and the hilltops).

    Returns:
        Elevation in metres (float32). The channel floor sits 2 m under the water level.
    """
    d = field.distance
    # rise = 1 - exp(-(d / width)^2), in place where the dtype cannot change: the same steps
    # in the same order and precision as the plain expression (float64 where the valley's
    # width is a NumPy float64), without a fresh canvas-sized array for each.
    rise = d / (valley.half_width * (1.0 + 0.25 * hills))
    np.multiply(rise, rise, out=rise)
    np.negative(rise, out=rise)
    np.exp(rise, out=rise)
    np.subtract(1.0, rise, out=rise)
    terrain = valley.depth * rise
    terrain += (valley.roughness * hills) * rise  # the walls
    channel = np.subtract(1.0, d / max(valley.river_width / 2.0, 0.5))
    np.clip(channel, 0, 1, out=channel)
    channel *= 2.0
    # The walls may be float64 (a valley's width can be a NumPy float64): the floor joins
    # them in their precision, and the sum is rounded once, at the end, as it always was.
    terrain += np.float32(valley.level(field.s))
    terrain -= channel
    return terrain.astype(np.float32, copy=False)


def draw_river(
    canvas: Canvas, field: RiverField, valley: Valley, keep: np.ndarray | None = None
) -> np.ndarray:
    """Put the river's water in its channel at ``h(s)`` (only where ``keep`` allows)."""
    wet = field.distance <= valley.river_width / 2.0
    if keep is not None:
        wet &= keep
    canvas.add_water(wet, np.asarray(valley.level(field.s), dtype=np.float32))
    return wet
