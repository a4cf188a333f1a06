"""Dam detections: the peaks of a scene's score map (:mod:`dam_detection.detection.peaks`) as
georeferenced points with scores.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyproj

from dam_detection.detection.peaks import find_peaks
from dam_detection.pipelines.segment.predict import ScoreMap


def pixels_to_lonlat(
    score_map: ScoreMap, col_px: np.ndarray, row_px: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude (EPSG:4326) of mosaic pixel positions."""
    x, y = score_map.mixer.pixel_to_crs(col_px, row_px)
    transformer = pyproj.Transformer.from_crs(score_map.mixer.crs, "EPSG:4326", always_xy=True)
    lon, lat = transformer.transform(np.asarray(x), np.asarray(y))
    return np.asarray(lon), np.asarray(lat)


def detect_peaks(score_map: ScoreMap, threshold: float, min_distance_px: float,
                 smoothing_px: float = 0.0) -> gpd.GeoDataFrame:  # fmt: skip
    """Detections of one scene as points in EPSG:4326.

    Args:
        score_map: FCN heatmap or sliding-classifier grid.
        threshold: Lowest score kept.
        min_distance_px: Minimum distance between detections in mosaic pixels (converted to
            grid cells for a coarse grid).
        smoothing_px: Gaussian sigma in mosaic pixels applied before the peaks are found.

    Returns:
        Columns ``scene``, ``score``, ``row``/``col`` (mosaic pixel centre), ``geometry``,
        highest score first.
    """
    distance = max(1, math.ceil(min_distance_px / score_map.stride))
    smoothing = smoothing_px / score_map.stride
    rows, cols, scores = find_peaks(score_map.probability, threshold, distance, smoothing)
    col_px, row_px = score_map.cell_to_pixel(rows, cols)
    lon, lat = pixels_to_lonlat(score_map, col_px, row_px)
    return gpd.GeoDataFrame(
        {
            "scene": [score_map.scene] * len(scores),
            "score": scores.astype(np.float64),
            "row": row_px,
            "col": col_px,
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )
