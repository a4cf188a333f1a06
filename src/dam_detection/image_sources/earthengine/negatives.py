"""Negative points from Earth Engine: water edges (hard negatives) and uniform random points.

Water edges follow the seed study: Canny edges on JRC Global Surface Water occurrence, the
strongest edges (lakes in deserts, image borders) masked out, then a seeded sample per region.
These are the only requests whose results come back to Python, with ``computeFeatures``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import ee
import geopandas as gpd
from shapely.geometry import mapping, shape

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.image_sources.earthengine.tasks import with_retries
from dam_detection.image_sources.settings import TaskSettings, WaterOccurrenceSettings

#: Features per ``computeFeatures`` page; Earth Engine caps a page at a few thousand.
PAGE_SIZE = 1000
#: Property holding the random number that orders samples before the per-region cap.
RANDOM_COLUMN = "random"


def water_edges(occurrence: WaterOccurrenceSettings, sampling: WaterEdgeSampling) -> ee.Image:
    """Canny edges of water occurrence, without non-edges and without the strongest edges."""
    image = ee.Image(occurrence.asset_id).select(occurrence.band)
    edges = ee.Algorithms.CannyEdgeDetector(image, sampling.canny_threshold, sampling.canny_sigma)
    # Canny returns 0 off the edges and the gradient magnitude on them.
    return edges.updateMask(edges.gt(0).And(edges.lt(sampling.max_edge_strength)))


def _region_rows(regions: gpd.GeoDataFrame) -> Iterator[tuple[int, str, ee.Geometry, Any]]:
    if "name" not in regions.columns:
        raise ValueError("regions need a `name` column naming each polygon")
    frame = regions if regions.crs is None else regions.to_crs("EPSG:4326")
    for position, (_, row) in enumerate(frame.iterrows()):
        geometry = ee.Geometry(mapping(row.geometry), opt_geodesic=False)
        yield position, str(row["name"]), geometry, row


def _row_value(row: Any, column: str, default: float) -> float:
    value = row.get(column) if hasattr(row, "get") else None
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else value


def water_edge_samples(
    regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling, occurrence: WaterOccurrenceSettings
) -> ee.FeatureCollection:
    """Sampled water-edge points of every region, each tagged with its region's name.

    A region row may carry its own ``factor`` and ``seed``; otherwise the sampling's factor is
    used and the seed is ``sampling.seed`` plus the region's position, so regions differ. The
    per-region cap keeps a seeded random subset: ``sample`` lists points tile by tile, so a
    plain ``limit`` would keep the first tiles' points, all from one corner of the region.
    """
    edges = water_edges(occurrence, sampling)
    collections = []
    for position, name, geometry, row in _region_rows(regions):
        seed = int(_row_value(row, "seed", sampling.seed + position))
        samples = edges.sample(
            region=geometry,
            scale=sampling.scale_m,
            factor=float(_row_value(row, "factor", sampling.factor)),
            seed=seed,
            geometries=True,
        )
        if sampling.max_points_per_region is not None:
            samples = (
                samples.randomColumn(RANDOM_COLUMN, seed)
                .sort(RANDOM_COLUMN)
                .limit(int(sampling.max_points_per_region))
            )
        collections.append(samples.map(lambda feature, name=name: feature.set("region", name)))
    return ee.FeatureCollection(collections).flatten().select(["region"])


def random_samples(
    regions: gpd.GeoDataFrame, points_per_region: int, seed: int
) -> ee.FeatureCollection:
    """Uniform random points (``FeatureCollection.randomPoints``), tagged with their region."""
    collections = [
        ee.FeatureCollection.randomPoints(geometry, points_per_region, seed + position).map(
            lambda feature, name=name: feature.set("region", name)
        )
        for position, name, geometry, _ in _region_rows(regions)
    ]
    return ee.FeatureCollection(collections).flatten()


def fetch_points(collection: ee.FeatureCollection, retries: TaskSettings) -> gpd.GeoDataFrame:
    """Compute a point collection and return it as a GeoDataFrame (EPSG:4326, ``region``).

    This is a synchronous request, paged through ``ee.data.computeFeatures``; each page is
    requested again with back-off while Earth Engine answers with a transient error.

    Args:
        collection: Points with a ``region`` property.
        retries: Attempts and back-off (``image_source.earthengine.tasks``).
    """
    features: list[dict[str, Any]] = []
    token = None
    while True:
        params: dict[str, Any] = {"expression": collection, "pageSize": PAGE_SIZE}
        if token:
            params["pageToken"] = token
        page = with_retries(partial(ee.data.computeFeatures, params), "computeFeatures", retries)
        features.extend(page.get("features", []))
        token = page.get("nextPageToken")
        if not token:
            break
    rows = [
        {
            "region": (feature.get("properties") or {}).get("region"),
            "geometry": shape(feature["geometry"]),
        }
        for feature in features
    ]
    return gpd.GeoDataFrame(
        rows, columns=["region", "geometry"], geometry="geometry", crs="EPSG:4326"
    )
