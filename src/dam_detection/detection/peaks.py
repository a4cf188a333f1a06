"""Peaks of a dam heatmap: local maxima at or above a threshold, at least a distance apart.

The map may first be smoothed by a Gaussian of ``smoothing_px`` (sigma, pixels): a dam's wall
lights up as a ridge, a look-alike often as a speck, and smoothing scores a place by the evidence
around it, not by its single brightest pixel. A peak is a local maximum over a
``(2 d + 1)``-pixel window at or above a threshold; flat tops
(a saturated sigmoid is exactly 1.0 over a few pixels) count once, at their centre; then peaks
closer than ``d`` to a higher one are dropped. The map is scanned in row strips with a halo, so a
full Sentinel-2 tile never needs a second scene-sized float array. ``train`` chooses its
detection threshold with these peaks and ``segment`` detects with them: one definition for both.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

#: Rows of the score map handled at once (plus halo) when looking for local maxima.
STRIP_ROWS = 1024
#: Reach of the smoothing Gaussian, in sigmas.
_TRUNCATE = 4.0


def find_peaks(
    scores: np.ndarray,
    threshold: float,
    min_distance: int,
    smoothing_px: float = 0.0,
    strip_rows: int = STRIP_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of a 2-D score array.

    Args:
        scores: ``(rows, cols)`` scores.
        threshold: Lowest score a peak may have (> 0), on the smoothed map.
        min_distance: Pixels: peaks closer than this to a higher peak are suppressed; also the
            half-width of the local-maximum window.
        smoothing_px: Sigma of the Gaussian the map is smoothed with first (0: none); a peak's
            score is the smoothed map's.
        strip_rows: Rows scanned at once.

    Returns:
        ``(rows, cols, scores)`` of the peaks, float rows/cols (plateau centres), highest first.

    Raises:
        ValueError: If ``threshold <= 0``, ``min_distance < 1`` or ``smoothing_px < 0``.
    """
    if threshold <= 0:
        raise ValueError(f"detection threshold must be > 0, got {threshold}")
    if min_distance < 1:
        raise ValueError(f"min_distance must be >= 1 pixel, got {min_distance}")
    if smoothing_px < 0:
        raise ValueError(f"smoothing_px must be >= 0, got {smoothing_px}")
    # The strips overlap by the maximum filter's window and the Gaussian's reach (4 sigma).
    reach = int(np.ceil(_TRUNCATE * smoothing_px))
    halo = 2 * min_distance + 1 + reach
    found_r, found_c, found_s = [], [], []
    for top in range(0, scores.shape[0], strip_rows):
        lo, hi = max(0, top - halo), min(scores.shape[0], top + strip_rows + halo)
        block = np.asarray(scores[lo:hi], dtype=np.float32)
        if smoothing_px > 0:
            block = ndimage.gaussian_filter(block, smoothing_px, mode="nearest",
                                            truncate=_TRUNCATE)  # fmt: skip
        peak = block == ndimage.maximum_filter(block, size=2 * min_distance + 1, mode="nearest")
        peak &= block >= threshold
        labels, count = ndimage.label(peak, structure=np.ones((3, 3)))
        if count == 0:
            continue
        index = np.arange(1, count + 1)
        centres = np.array(ndimage.center_of_mass(peak, labels, index)).reshape(-1, 2)
        best = np.asarray(ndimage.maximum(block, labels, index))
        rows = centres[:, 0] + lo
        keep = (rows >= top) & (rows < top + strip_rows)  # each plateau belongs to one strip
        found_r.append(rows[keep])
        found_c.append(centres[keep, 1])
        found_s.append(best[keep])
    if not found_r:
        return np.empty(0), np.empty(0), np.empty(0, np.float32)
    rows, cols, values = map(np.concatenate, (found_r, found_c, found_s))
    keep = suppress_close(rows, cols, values, min_distance)
    return rows[keep], cols[keep], values[keep]


def suppress_close(
    rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, min_distance: float
) -> np.ndarray:
    """Greedy non-maximum suppression: indices of kept points, highest score first.

    Ties are broken by position (row, then column) so the result does not depend on scan order.
    """
    order = np.lexsort((cols, rows, -scores))
    tree = cKDTree(np.column_stack([rows, cols]))
    suppressed = np.zeros(len(rows), dtype=bool)
    kept = []
    for i in order:
        if suppressed[i]:
            continue
        kept.append(i)
        for j in tree.query_ball_point([rows[i], cols[i]], r=min_distance - 1e-9):
            suppressed[j] = True
    return np.array(kept, dtype=np.int64)
