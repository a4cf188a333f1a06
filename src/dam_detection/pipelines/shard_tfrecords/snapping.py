"""Re-centre dam patches on the wall the image shows, not where the inventory put the point.

Inventories place dams beside their walls: on the reservoir, at a gauge, a few hundred metres
off. A model trained on patches centred on those points learns that a dam is "somewhere near
the middle". This step uses only what every patch holds (NDWI and elevation), never a truth a
user would not have:

1. water is ``NDWI > 0``; each water body near the centre gets its surface level, the median
   elevation (``AVE``) of its pixels (a DSM sees a lake's surface);
2. a dam holds its lake above the valley below: at the wall, the dry ground within a few
   hundred metres lies well under the lake's surface, while a natural shore rises above it;
3. the edge pixel of a lake where that drop is largest (ties go to the one nearest the centre)
   is the wall; the patch is shifted so that it becomes the centre, the pixels shifted in
   from outside filled with 0, as Earth Engine fills masked pixels.

A patch without such an edge within ``max_shift_px`` (no lake in view, clouds over the
reservoir, an elevation void) is kept as it was, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from dam_detection.bands import ELEVATION_BAND, NDWI_BAND

#: Dry ground this far around a lake's edge pixel is compared with the lake's surface (pixels).
_DOWNSTREAM_REACH_PX = 10
#: Lakes smaller than this many pixels are ignored (puddles, noise).
_MIN_LAKE_PX = 30


@dataclass(frozen=True)
class SnapResult:
    """Where the wall was found, relative to the centre, and how sure the image is.

    Attributes:
        shift: ``(rows, cols)`` from the centre to the wall, or ``None`` when none was found.
        drop_m: The lake's surface above the lowest dry ground beside that edge.
    """

    shift: tuple[int, int] | None
    drop_m: float = 0.0


def find_wall(
    ndwi: np.ndarray, elevation: np.ndarray, max_shift_px: int, min_drop_m: float
) -> SnapResult:
    """The lake edge near the centre where the ground beyond falls furthest below the lake.

    Args:
        ndwi: NDWI of the square patch.
        elevation: Surface elevation (``AVE``) of the patch; 0 where void.
        max_shift_px: Farthest the wall may lie from the centre.
        min_drop_m: Least drop from the lake surface to the dry ground beyond for a wall.

    Returns:
        The shift to the wall, or ``SnapResult(None)``.
    """
    size = ndwi.shape[0]
    centre = size // 2
    water = ndwi > 0.0
    lakes, count = ndimage.label(water)
    if count == 0:
        return SnapResult(None)
    sizes = ndimage.sum_labels(water, lakes, np.arange(1, count + 1))
    levels = ndimage.median(elevation, lakes, np.arange(1, count + 1))
    level_of = np.concatenate(([np.nan], np.where(sizes >= _MIN_LAKE_PX, levels, np.nan)))
    dry = np.where(~water & (elevation != 0.0), elevation, np.inf)
    lowest_dry = ndimage.minimum_filter(dry, size=2 * _DOWNSTREAM_REACH_PX + 1)
    edge = water & ~ndimage.binary_erosion(water, border_value=1)
    rows, cols = np.nonzero(edge)
    distance = np.hypot(rows - centre, cols - centre)
    near = distance <= max_shift_px
    rows, cols, distance = rows[near], cols[near], distance[near]
    if rows.size == 0:
        return SnapResult(None)
    drop = level_of[lakes[rows, cols]] - lowest_dry[rows, cols]
    drop = np.where(np.isfinite(drop), drop, -np.inf)
    # The biggest drop wins; a metre of drop is worth 5 pixels of distance from the centre.
    score = drop - 0.2 * distance
    best = int(np.argmax(score))
    if drop[best] < min_drop_m:
        return SnapResult(None)
    return SnapResult((int(rows[best]) - centre, int(cols[best]) - centre), float(drop[best]))


def shift_patch(bands: dict[str, np.ndarray], shift: tuple[int, int]) -> dict[str, np.ndarray]:
    """The square patches moved so that ``centre + shift`` becomes the centre (0 fill)."""
    d_row, d_col = shift
    moved = {}
    for band, image in bands.items():
        out = np.zeros_like(image)
        size = image.shape[0]
        src_rows = slice(max(d_row, 0), size + min(d_row, 0))
        dst_rows = slice(max(-d_row, 0), size + min(-d_row, 0))
        src_cols = slice(max(d_col, 0), size + min(d_col, 0))
        dst_cols = slice(max(-d_col, 0), size + min(-d_col, 0))
        out[dst_rows, dst_cols] = image[src_rows, src_cols]
        moved[band] = out
    return moved


def snap_dam(
    bands: dict[str, np.ndarray], size: int, max_shift_px: int, min_drop_m: float
) -> tuple[dict[str, np.ndarray], SnapResult]:
    """Re-centre a dam patch (flat band arrays of ``size * size``) on the wall it shows."""
    if NDWI_BAND not in bands or ELEVATION_BAND not in bands:
        return bands, SnapResult(None)
    result = find_wall(
        bands[NDWI_BAND].reshape(size, size),
        bands[ELEVATION_BAND].reshape(size, size),
        max_shift_px,
        min_drop_m,
    )
    if result.shift is None or result.shift == (0, 0):
        return bands, result
    squares = {band: values.reshape(size, size) for band, values in bands.items()}
    moved = shift_patch(squares, result.shift)
    return {band: image.ravel() for band, image in moved.items()}, result
