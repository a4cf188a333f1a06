"""Detections against known dams: one-to-one matching within a tolerance, in metres.

Each known dam can explain at most one detection and each detection at most one dam. The
matching maximises the number of pairs closer than the tolerance (Hungarian assignment on the
distances, pairs beyond the tolerance priced out), so a dense cluster of detections on one wall
counts one true positive and the rest as false positives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np

from dam_detection.detection.matching import count_matches


def metric_xy(points: gpd.GeoDataFrame, crs: Any) -> np.ndarray:
    """``(n, 2)`` coordinates of points in a metric CRS."""
    if len(points) == 0:
        return np.empty((0, 2))
    projected = points.to_crs(crs)
    return np.column_stack([projected.geometry.x, projected.geometry.y])


def evaluate_scene(
    truth: gpd.GeoDataFrame,
    detections: gpd.GeoDataFrame,
    tolerances: Sequence[float],
    thresholds: Sequence[float],
) -> dict[float, list[dict[str, Any]]]:
    """Counts for one scene; distances in the UTM zone of the scene's known dams or detections."""
    both = truth.geometry if len(truth) else detections.geometry
    if len(both) == 0:
        return count_matches(
            np.empty((0, 2)), np.empty((0, 2)), np.empty(0), tolerances, thresholds
        )
    crs = gpd.GeoSeries(both, crs="EPSG:4326").estimate_utm_crs()
    return count_matches(
        metric_xy(truth, crs),
        metric_xy(detections, crs),
        detections["score"].to_numpy() if len(detections) else np.empty(0),
        tolerances,
        thresholds,
    )


def at(
    metrics: Mapping[Any, list[Mapping[str, Any]]], tolerance: Any, threshold: float
) -> Mapping[str, Any]:
    """The row of combined ``metrics`` at ``tolerance`` whose threshold is nearest ``threshold``."""
    rows = metrics[tolerance]
    return min(rows, key=lambda row: abs(row["threshold"] - threshold))
