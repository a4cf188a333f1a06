"""What a worker does with one scan tile: read it, segment it, find its dams, draw their chips.

Everything here runs inside a Dask worker process. The model arrives once per worker as a
:class:`ModelPayload` (its Keras config and weights, not a file path), is rebuilt with its batch
normalisations folded, and is kept for every later tile (:func:`predictor_for`). A tile's
results go straight into the :class:`~.store.TileStore`; only a small summary travels back, so
a worker's memory does not grow with the region.
"""

from __future__ import annotations

import hashlib
import io
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from dam_detection.bands import RGB_BANDS
from dam_detection.detection.peaks import find_peaks
from dam_detection.detection.views import averaged_over_views
from dam_detection.pipelines.scan.store import TileStore
from dam_detection.pipelines.scan.tiling import PIXEL_M, ScanTile
from dam_detection.pipelines.segment.blocks import predict_windows

#: Reads ``(epsg, first_col, top_north, width, height)`` -> ``(height, width, bands)`` float32.
BlockReader = Callable[[int, int, int, int, int], np.ndarray]
Predict = Callable[[np.ndarray], np.ndarray]

#: Water bodies narrower than this many pixels are cut apart for the reservoir rule, so a thin
#: river does not join one dam's reservoir to the next dam's.
RIVER_CUT_PX = 5
#: Reflectance drawn white in a chip's true colour panel.
CHIP_REFLECTANCE_MAX = 0.3


@dataclass(frozen=True)
class ModelPayload:
    """A Keras model as plain data (its JSON architecture and weights, never a file path): what
    a worker on any machine of a cluster needs to rebuild it, and its fingerprint.
    """

    architecture: str
    weights: list[np.ndarray]
    key: str

    @classmethod
    def of(cls, model: Any) -> ModelPayload:
        """The payload of a Keras functional model."""
        weights = [np.asarray(w) for w in model.get_weights()]
        digest = hashlib.sha256()
        for weight in weights:
            digest.update(np.ascontiguousarray(weight).tobytes())
        digest.update(model.to_json().encode())
        return cls(architecture=model.to_json(), weights=weights, key=digest.hexdigest()[:16])


_PREDICTORS: dict[str, Predict] = {}


def predictor_for(payload: ModelPayload, threads: int) -> Predict:
    """The worker's predictor for ``payload``: built on first use, then reused for every tile."""
    if payload.key not in _PREDICTORS:
        import tensorflow as tf

        try:  # only possible before TensorFlow's first operation in this process
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
        import keras

        from dam_detection.pipelines.segment.inference import fold_batch_norm

        model = keras.models.model_from_json(payload.architecture)
        model.set_weights(payload.weights)
        _PREDICTORS.clear()  # one model per worker at a time
        _PREDICTORS[payload.key] = fold_batch_norm(model).predict_on_batch
    return _PREDICTORS[payload.key]


@dataclass(frozen=True)
class TileJob:
    """The settings every tile of a scan shares (sent to each worker once).

    Attributes:
        reader: Reads blocks of the image source's grid.
        bands: Channel order the model takes.
        band_stats: ``stats.json["bands"]``.
        model: The FCN.
        halo: Context pixels the model's receptive field needs around each block.
        block_px: Side of the blocks the FCN predicts.
        blocks_per_batch: Blocks of one shape predicted together.
        views: Poses of each block predicted and averaged (``detection.views``).
        threshold: Lowest peak score kept.
        confirm_threshold: Lowest score of a peak kept only because a listed dam lies within
            ``confirm_reach_px`` (below ``threshold``; ``None``: no such peaks).
        confirm_reach_px: How near a listed point such a peak must be (the largest
            ``scan.matching.radius_m``; the sorting applies each inventory's own).
        min_distance_px: Peaks at least this far apart.
        smoothing_px: Gaussian sigma the heatmap is smoothed with before its peaks are found.
        water_ndwi: NDWI above which a pixel is water (reservoir rule).
        reservoir_reach_px: How near a detection or a listed point must be to a water body.
        chip_px: Chip side in pixels.
        chip_scale: Chip magnification.
        threads: TensorFlow threads in the worker.
        fingerprint: Everything above that changes results, hashed: a finished tile is reused
            only when its fingerprint is the same.
    """

    reader: BlockReader
    bands: tuple[str, ...]
    band_stats: Mapping[str, Mapping[str, float]]
    model: ModelPayload
    halo: int
    block_px: int
    threshold: float
    min_distance_px: float
    smoothing_px: float
    water_ndwi: float
    reservoir_reach_px: float
    chip_px: int
    chip_scale: int
    # No defaults for what the parameters decide: a caller that forgets one (a benchmark once
    # predicted one view while the scan it measured used four) fails instead of drifting.
    blocks_per_batch: int
    views: int
    confirm_threshold: float | None
    confirm_reach_px: float
    threads: int = 1
    fingerprint: str = field(default="")


@dataclass(frozen=True)
class ListedPoints:
    """Inventory dam points near a tile, in the tile grid's metres."""

    ids: tuple[str, ...] = ()
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()


def block_sides(length: int, block_px: int) -> list[int]:
    """Split ``length`` pixels into the fewest blocks of at most ``block_px``, as even as
    possible (an uneven last block would pay the whole halo for a thin strip).
    """
    count = -(-length // block_px)
    base, extra = divmod(length, count)
    return [base + 1] * extra + [base] * (count - extra)


def predict_array(predict: Predict, image: np.ndarray, halo: int, block_px: int,
                  band_stats: Mapping[str, Mapping[str, float]], bands: Sequence[str],
                  blocks_per_batch: int = 1) -> np.ndarray:  # fmt: skip
    """FCN probabilities over ``image`` without its ``halo`` (float16), block by block.

    Each block (at most ``block_px`` a side, :func:`block_sides`) is predicted with ``halo``
    pixels of real context on every side, so every kept pixel sees all the inputs its
    receptive field covers; up to ``blocks_per_batch`` equal neighbours at once
    (:func:`.predict_windows`).
    """
    height, width = image.shape[0] - 2 * halo, image.shape[1] - 2 * halo
    heatmap = np.zeros((height, width), np.float16)
    row_sides, col_sides = block_sides(height, block_px), block_sides(width, block_px)
    tops = np.cumsum([0, *row_sides[:-1]])
    lefts = np.cumsum([0, *col_sides[:-1]])
    windows = [
        (int(top), int(left), rows, cols)
        for top, rows in zip(tops, row_sides, strict=True)
        for left, cols in zip(lefts, col_sides, strict=True)
    ]
    for (top, left, rows, cols), core in predict_windows(
        predict, image, windows, halo, band_stats, bands, blocks_per_batch
    ):
        heatmap[top : top + rows, left : left + cols] = core
    return heatmap


def water_bodies(ndwi: np.ndarray, threshold: float) -> np.ndarray:
    """Labelled water bodies (0: land), thin rivers cut so reservoirs stay apart."""
    water = ndimage.binary_opening(ndwi > threshold, structure=np.ones((RIVER_CUT_PX,) * 2))
    labels, _ = ndimage.label(water)
    return labels


def nearest_body(labels: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 reach_px: float) -> np.ndarray:  # fmt: skip
    """The water body within ``reach_px`` of each pixel (0 where none)."""
    if len(rows) == 0 or not labels.any():
        return np.zeros(len(rows), np.int64)
    distance, (near_r, near_c) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    r = np.clip(np.round(rows).astype(np.int64), 0, labels.shape[0] - 1)
    c = np.clip(np.round(cols).astype(np.int64), 0, labels.shape[1] - 1)
    body = labels[near_r[r, c], near_c[r, c]]
    return np.where(distance[r, c] <= reach_px, body, 0).astype(np.int64)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def chip_png(image: np.ndarray, heat: np.ndarray, bands: Sequence[str], row: float, col: float,
             size: int, scale: int) -> bytes:  # fmt: skip
    """True colour, heatmap and NDWI around ``(row, col)``, side by side, as PNG bytes."""
    from matplotlib import colormaps
    from matplotlib.image import imsave

    half = size // 2
    r0, c0 = int(round(row)) - half, int(round(col)) - half
    pad = [(max(0, -r0), max(0, r0 + size - heat.shape[0])),
           (max(0, -c0), max(0, c0 + size - heat.shape[1]))]  # fmt: skip
    rs, cs = slice(max(0, r0), r0 + size), slice(max(0, c0), c0 + size)
    window = np.pad(image[rs, cs], pad + [(0, 0)])
    heat_window = np.pad(np.asarray(heat[rs, cs], np.float32), pad)
    index = {band: i for i, band in enumerate(bands)}
    if set(RGB_BANDS) <= set(index):
        rgb = window[..., [index[band] for band in RGB_BANDS]]
        true_colour = _stretch(rgb, 0.0, CHIP_REFLECTANCE_MAX)
    else:
        true_colour = np.repeat(_stretch(window[..., :1], *np.percentile(window[..., 0], [2, 98])
                                         + np.array([0.0, 1e-6])), 3, -1)  # fmt: skip
    panels = [true_colour, colormaps["magma"](heat_window)[..., :3]]
    if "NDWI" in index:
        panels.append(colormaps["BrBG"](_stretch(window[..., index["NDWI"]], -1.0, 1.0))[..., :3])
    gap = np.ones((size, 2, 3))
    strip = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    # Ticks on each panel's edges point at the detection, leaving the centre itself visible.
    tick = max(2, size // 12)
    for left in range(0, strip.shape[1], size + 2):
        strip[list(range(tick)) + list(range(size - tick, size)), left + half] = (0.0, 1.0, 1.0)
        sides = [left + i for i in range(tick)] + [left + size - 1 - i for i in range(tick)]
        strip[half, sides] = (0.0, 1.0, 1.0)
    big = np.repeat(np.repeat(strip, scale, 0), scale, 1)
    buffer = io.BytesIO()
    imsave(buffer, (big * 255).astype(np.uint8), format="png")
    return buffer.getvalue()


def scan_tile(tile: ScanTile, listed: ListedPoints, store: TileStore, job: TileJob) -> dict:
    """Segment one tile, keep the detections in its core, and store its heatmap and chips.

    Returns:
        A summary: ``tile_id``, ``detections``, ``seconds``, ``read_seconds``,
        ``predict_seconds``, ``computed_px``, ``output_px``, ``peak_rss_mb`` of the worker.
    """
    start = time.perf_counter()
    halo, window = job.halo, tile.window_px
    image = job.reader(tile.epsg, tile.window_col - halo, tile.window_top + halo,
                       window + 2 * halo, window + 2 * halo)  # fmt: skip
    read_s = time.perf_counter() - start
    predict = averaged_over_views(predictor_for(job.model, job.threads), job.views)
    heat = predict_array(predict, image, halo, job.block_px, job.band_stats, job.bands,
                         job.blocks_per_batch)  # fmt: skip
    predict_s = time.perf_counter() - start - read_s
    image = image[halo : halo + window, halo : halo + window]
    lowest = min(job.threshold, job.confirm_threshold or job.threshold)
    rows, cols, scores = find_peaks(heat, lowest, int(round(job.min_distance_px)),
                                    job.smoothing_px)  # fmt: skip
    o, size = tile.overlap_px, tile.size_px
    owned = (rows >= o) & (rows < o + size) & (cols >= o) & (cols < o + size)
    # Grid metres of pixel centres (rows count south from the window's north edge).
    x = (tile.window_col + cols + 0.5) * PIXEL_M
    y = (tile.window_top + 1 - rows - 0.5) * PIXEL_M
    # A peak below the threshold stays only where it may confirm a listed dam.
    owned &= (scores >= job.threshold) | _near_listed(x, y, listed, job.confirm_reach_px * PIXEL_M)
    rows, cols, scores, x, y = rows[owned], cols[owned], scores[owned], x[owned], y[owned]
    reservoir_ids: list[list[str]] = [[] for _ in rows]
    if "NDWI" in job.bands and len(rows) and listed.ids:
        bodies = water_bodies(image[..., job.bands.index("NDWI")], job.water_ndwi)
        found_body = nearest_body(bodies, rows, cols, job.reservoir_reach_px)
        listed_rows = tile.window_top + 1 - np.asarray(listed.y) / PIXEL_M - 0.5
        listed_cols = np.asarray(listed.x) / PIXEL_M - tile.window_col - 0.5
        inside = (listed_rows >= 0) & (listed_rows < window) & (listed_cols >= 0) & (
            listed_cols < window)  # fmt: skip
        listed_body = np.zeros(len(listed.ids), np.int64)
        listed_body[inside] = nearest_body(
            bodies, listed_rows[inside], listed_cols[inside], job.reservoir_reach_px
        )
        for i, body in enumerate(found_body):
            if body:
                reservoir_ids[i] = [listed.ids[j] for j in np.flatnonzero(listed_body == body)]
    detections = []
    for n, (r, c, s) in enumerate(zip(rows, cols, scores, strict=True)):
        detection_id = f"{tile.tile_id}_{n:03d}"
        store.write_chip(detection_id, chip_png(image, heat, job.bands, r, c, job.chip_px,
                                                job.chip_scale))  # fmt: skip
        detections.append({
            "detection_id": detection_id, "tile_id": tile.tile_id, "x": float(x[n]),
            "y": float(y[n]), "score": float(s), "reservoir_ids": reservoir_ids[n],
        })  # fmt: skip
    core = heat[o : o + size, o : o + size]
    store.write_tile(tile, core, detections, job.fingerprint)
    seconds = time.perf_counter() - start
    return {
        "tile_id": tile.tile_id,
        "detections": len(detections),
        "seconds": round(seconds, 2),
        "read_seconds": round(read_s, 2),
        "predict_seconds": round(predict_s, 2),
        "computed_px": int(_computed_px(window, job.block_px, halo)),
        "output_px": int(size * size),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _near_listed(x: np.ndarray, y: np.ndarray, listed: ListedPoints, reach_m: float) -> np.ndarray:
    """Whether each point lies within ``reach_m`` of a listed dam."""
    if not listed.ids or not len(x):
        return np.zeros(len(x), bool)
    gap, _ = cKDTree(np.column_stack([listed.x, listed.y])).query(np.column_stack([x, y]))
    return gap <= reach_m


def _computed_px(window: int, block_px: int, halo: int) -> int:
    sides = [side + 2 * halo for side in block_sides(window, block_px)]
    return sum(a * b for a in sides for b in sides)
