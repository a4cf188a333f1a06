"""Where small works go: dry, open land inside a tile, away from water and other structures."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dam_detection.image_sources.simulated import canvas as cv
from dam_detection.image_sources.simulated.canvas import Canvas

#: Covers a new work is never built over (water, towns, walls, decks, roads, tracks).
_OCCUPIED = (cv.WATER, cv.URBAN, cv.CONCRETE, cv.ASPHALT, cv.DIRT, cv.RIPRAP)
#: Random centres tried before a work is given up.
_TRIES = 40


def window(shape: tuple[int, int], centre: tuple[float, float], reach: int) -> tuple[slice, slice]:
    """Rows and columns within ``reach`` pixels of ``centre`` ``(x, y)``, clipped to the canvas."""
    rows, cols = shape
    cx, cy = int(centre[0]), int(centre[1])
    return (
        slice(max(cy - reach, 0), min(cy + reach + 1, rows)),
        slice(max(cx - reach, 0), min(cx + reach + 1, cols)),
    )


def find_site(
    canvas: Canvas,
    rng: np.random.Generator,
    reach: int,
    margin: int,
    interior: np.ndarray | None,
) -> tuple[float, float] | None:
    """A centre ``(x, y)`` whose surroundings (``reach`` pixels) are open, dry land.

    Args:
        canvas: The composed canvas.
        rng: Draws the candidate centres.
        reach: Pixels around the centre the work may touch.
        margin: Centres stay this far inside the canvas edge (a planet tile's margin).
        interior: Pixels away from a tile's quiet border (``None``: all).

    Returns:
        The centre, or ``None`` when none of the tries found room.
    """
    rows, cols = canvas.shape
    low, high_x, high_y = margin + reach, cols - margin - reach, rows - margin - reach
    if high_x <= low or high_y <= low:
        return None
    for _ in range(_TRIES):  # cheap, and enough on open land
        centre = (float(rng.uniform(low, high_x)), float(rng.uniform(low, high_y)))
        near = window(canvas.shape, centre, reach)
        if np.isin(canvas.cover[near], _OCCUPIED).any() or (canvas.structure[near] > 0).any():
            continue
        if interior is not None and not interior[near].all():
            continue
        return centre
    # Crowded land: every centre with room, from the distance to the nearest occupied pixel.
    occupied = np.isin(canvas.cover, _OCCUPIED) | (canvas.structure > 0)
    if interior is not None:
        occupied |= ~interior
    room = ndimage.distance_transform_cdt(~occupied, metric="chessboard") > reach + 1
    room[:low, :] = room[high_y:, :] = room[:, :low] = room[:, high_x:] = False
    rows_ok, cols_ok = np.nonzero(room)
    if not len(rows_ok):
        return None
    pick = int(rng.integers(len(rows_ok)))
    return float(cols_ok[pick]) + 0.5, float(rows_ok[pick]) + 0.5
