"""Patch exports: one ``tf.train.Example`` per point, in Earth Engine's table-export format.

Every point gets the pixels of a ``(2r+1) x (2r+1)`` neighbourhood as one array per band.
``reduceRegion`` is mapped over the points one feature at a time; ``sampleRegions`` over a whole
chunk times out on 257x257 arrays, while the per-feature form lets Earth Engine split the work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import ee
import geopandas as gpd

from dam_detection.bands import POINT_INDEX_KEY


def patch_image(image: ee.Image, radius: int) -> ee.Image:
    """Turn every pixel into the ``(2 * radius + 1)``-square array of its neighbourhood."""
    kernel = ee.Kernel.rectangle(radius, radius, "pixels")
    return image.neighborhoodToArray(kernel)


def points_collection(points: gpd.GeoDataFrame, label_key: str) -> ee.FeatureCollection:
    """The points as an ``ee.FeatureCollection`` with the label and point index as numbers.

    Args:
        points: Points table rows with ``point_index``, ``label`` and Point geometries in
            EPSG:4326.
        label_key: Property name for the label (``label`` or ``class``).

    Raises:
        ValueError: If a column is missing or the geometries are not EPSG:4326 points.
    """
    missing = [column for column in (POINT_INDEX_KEY, "label") if column not in points.columns]
    if missing:
        raise ValueError(f"the points table lacks columns {missing}; run ingest_points first")
    if points.crs is not None and points.crs.to_epsg() != 4326:
        raise ValueError(f"points must be in EPSG:4326, got {points.crs}; reproject them first")
    if not points.geometry.geom_type.eq("Point").all():
        raise ValueError("every row of the points table must be a Point geometry")
    features = [
        ee.Feature(
            ee.Geometry.Point([float(geometry.x), float(geometry.y)]),
            {label_key: float(label), POINT_INDEX_KEY: int(index)},
        )
        for geometry, label, index in zip(
            points.geometry, points["label"], points[POINT_INDEX_KEY], strict=True
        )
    ]
    return ee.FeatureCollection(features)


def sample_patches(
    array_image: ee.Image,
    points: ee.FeatureCollection,
    scale_m: float,
    crs: str,
    tile_scale: float,
) -> ee.FeatureCollection:
    """Attach each point's neighbourhood arrays to its feature, one ``reduceRegion`` per point.

    A band whose centre pixel is masked comes back null and so is absent from the record, as in
    every real Earth Engine export. The CRS is named explicitly: a composite's own projection
    is Earth Engine's default (1 degree), so without it the grid would depend on the inputs.

    Args:
        array_image: From :func:`patch_image`.
        points: From :func:`points_collection`.
        scale_m: Pixel size in metres.
        crs: The grid's CRS (``EPSG:4326`` for Earth Engine's degree grid).
        tile_scale: Earth Engine tiles the reduction this many times more finely, trading
            speed for memory.
    """

    def sample_one(feature: ee.Feature) -> ee.Feature:
        values = array_image.reduceRegion(
            reducer=ee.Reducer.first(),
            geometry=feature.geometry(),
            scale=scale_m,
            crs=crs,
            tileScale=tile_scale,
        )
        return ee.Feature(feature.set(values))

    return points.map(sample_one)


def chunk_points(points: gpd.GeoDataFrame, size: int) -> Iterator[gpd.GeoDataFrame]:
    """Split the points, in ``point_index`` order, into chunks of at most ``size`` rows."""
    if size < 1:
        raise ValueError(f"points_per_file must be at least 1, got {size}")
    ordered = points.sort_values(POINT_INDEX_KEY) if POINT_INDEX_KEY in points else points
    for start in range(0, len(ordered), size):
        yield ordered.iloc[start : start + size]


def table_selectors(bands: Sequence[str], label_key: str) -> list[str]:
    """Columns of the exported records: the bands, the label and the point index, in order."""
    return [*bands, label_key, POINT_INDEX_KEY]


def patch_export_task(
    collection: ee.FeatureCollection,
    *,
    description: str,
    file_prefix: str,
    selectors: Sequence[str],
    destination: str,
    bucket: str | None,
    drive_folder: str | None,
) -> ee.batch.Task:
    """An unsubmitted ``Export.table`` task writing TFRecord with explicit selectors.

    Args:
        collection: Features with the band arrays set.
        description: Task name shown in the Earth Engine task list.
        file_prefix: Object name (Cloud Storage) or file name (Drive) without extension.
        selectors: Columns to write; anything else on the features is dropped.
        destination: ``cloud_storage`` or ``drive``.
        bucket: Cloud Storage bucket (``cloud_storage``).
        drive_folder: Drive folder (``drive``).
    """
    options: dict[str, Any] = {
        "collection": collection,
        "description": description,
        "fileNamePrefix": file_prefix,
        "fileFormat": "TFRecord",
        "selectors": list(selectors),
    }
    if destination == "cloud_storage":
        return ee.batch.Export.table.toCloudStorage(bucket=bucket, **options)
    if destination == "drive":
        return ee.batch.Export.table.toDrive(folder=drive_folder, **options)
    raise ValueError(f"destination must be 'cloud_storage' or 'drive', got {destination!r}")
