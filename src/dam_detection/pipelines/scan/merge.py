"""Detections of all tiles as one table, with none counted twice at a seam.

Each tile keeps only the detections in its core, and its overlap gives every kept peak its
whole neighbourhood, so two tiles never keep the same peak. Two peaks on either side of a seam
can still lie closer than the detection spacing (each tile's suppression saw only its own
window's peaks near the other): the lower one is suppressed here, as it would have been in one
big heatmap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer

from dam_detection.detection.peaks import suppress_close
from dam_detection.pipelines.scan.tiling import PIXEL_M

DETECTION_COLUMNS = ("detection_id", "tile_id", "x", "y", "score", "reservoir_ids")


def merge_tile_detections(per_tile: Sequence[Sequence[dict[str, Any]]], epsg: int,
                          min_distance_px: float) -> gpd.GeoDataFrame:  # fmt: skip
    """One table of every tile's detections, seam duplicates suppressed, highest score first.

    Args:
        per_tile: Each tile's detections (``x``, ``y`` in the grid's metres, ``score``...).
        epsg: The grid's CRS.
        min_distance_px: The detection spacing.

    Returns:
        EPSG:4326 points with ``detection_id``, ``tile_id``, ``score``, ``x``, ``y``,
        ``reservoir_ids``, ``lon``, ``lat`` and ``rank`` (1 = highest score).
    """
    rows = [detection for tile in per_tile for detection in tile]
    frame = pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
    if len(frame):
        keep = suppress_close(
            frame["y"].to_numpy() / PIXEL_M, frame["x"].to_numpy() / PIXEL_M,
            frame["score"].to_numpy(), min_distance_px,
        )  # fmt: skip
        frame = frame.iloc[np.sort(keep)]
    frame = frame.sort_values(["score", "detection_id"], ascending=[False, True])
    frame = frame.reset_index(drop=True)
    lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(
        frame["x"].to_numpy(float), frame["y"].to_numpy(float)
    )
    frame = frame.assign(
        lon=np.asarray(lon), lat=np.asarray(lat), rank=np.arange(1, len(frame) + 1)
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
