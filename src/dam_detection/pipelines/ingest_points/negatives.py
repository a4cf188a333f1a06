"""Regions of interest and seeded random points inside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Polygon, box


def regions_frame(regions: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Build region polygons from parameters.

    Args:
        regions: Entries with a unique ``name`` and either ``bbox`` ``[west, south, east,
            north]`` or ``polygon`` ``[[lon, lat], ...]`` (degrees, EPSG:4326).

    Returns:
        Polygons with a ``name`` column, EPSG:4326.

    Raises:
        ValueError: If an entry has no name, a repeated name, neither or both shapes, or an
            invalid shape; the message names the entry.
    """
    names: list[str] = []
    shapes: list[Polygon] = []
    for position, region in enumerate(regions):
        where = f"ingest_points.regions[{position}]"
        name = region.get("name")
        if not name or name in names:
            raise ValueError(f"{where}: give every region a unique name, got {name!r}")
        if ("bbox" in region) == ("polygon" in region):
            raise ValueError(f"{where} ({name}): set exactly one of bbox or polygon")
        if "bbox" in region:
            west, south, east, north = (float(v) for v in region["bbox"])
            if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
                raise ValueError(
                    f"{where} ({name}): bbox {region['bbox']} must be [west, south, east, north] "
                    "in degrees with west < east and south < north"
                )
            shape = box(west, south, east, north)
        else:
            shape = Polygon(region["polygon"])
            if not shape.is_valid or shape.is_empty:
                raise ValueError(
                    f"{where} ({name}): polygon is invalid ({shapely.is_valid_reason(shape)}); "
                    "list [lon, lat] vertices in order without self-intersections"
                )
        names.append(str(name))
        shapes.append(shape)
    return gpd.GeoDataFrame({"name": names}, geometry=shapes, crs="EPSG:4326")


def _uniform_in_box(
    rng: np.random.Generator, bounds: tuple[float, float, float, float], count: int
) -> tuple[np.ndarray, np.ndarray]:
    # Uniform on the sphere: longitude uniform, sine of latitude uniform.
    west, south, east, north = bounds
    lon = rng.uniform(west, east, count)
    lat = np.degrees(
        np.arcsin(rng.uniform(np.sin(np.radians(south)), np.sin(np.radians(north)), count))
    )
    return lon, lat


def random_points_in_regions(
    regions: gpd.GeoDataFrame, count: int, seed: int, max_tries: int = 1000
) -> gpd.GeoDataFrame:
    """Draw ``count`` points uniformly (by ground area) over the union of ``regions``.

    Args:
        regions: Polygons with a ``name`` column, EPSG:4326.
        count: Points to draw in total; regions get them in proportion to their area.
        seed: Random seed; the same seed and regions give the same points.
        max_tries: Rejection-sampling rounds before giving up on a thin polygon.

    Returns:
        Points with a ``region`` column, EPSG:4326, in region order.

    Raises:
        ValueError: If ``count`` > 0 and there are no regions, or a polygon keeps rejecting.
    """
    if count > 0 and regions.empty:
        raise ValueError("random negatives need regions: add entries to ingest_points.regions")
    rng = np.random.default_rng(seed)
    areas = regions.to_crs("EPSG:6933").area.to_numpy() if count > 0 else np.zeros(0)
    per_region = rng.multinomial(count, areas / areas.sum()) if count > 0 else np.zeros(0, int)
    frames = []
    for (name, shape), wanted in zip(
        zip(regions["name"], regions.geometry, strict=True), per_region, strict=False
    ):
        lon_parts: list[np.ndarray] = []
        lat_parts: list[np.ndarray] = []
        found = 0
        for _ in range(max_tries):
            if found >= wanted:
                break
            lon, lat = _uniform_in_box(rng, shape.bounds, max(2 * (wanted - found), 16))
            inside = shapely.contains_xy(shape, lon, lat)
            lon_parts.append(lon[inside])
            lat_parts.append(lat[inside])
            found += int(inside.sum())
        if found < wanted:
            raise ValueError(f"region {name!r}: could not place {wanted} random points inside it")
        lon = np.concatenate(lon_parts)[:wanted] if wanted else np.zeros(0)
        lat = np.concatenate(lat_parts)[:wanted] if wanted else np.zeros(0)
        frames.append(
            gpd.GeoDataFrame(
                {"region": [name] * int(wanted)},
                geometry=gpd.points_from_xy(lon, lat),
                crs="EPSG:4326",
            )
        )
    if not frames:
        return gpd.GeoDataFrame(
            {"region": []}, geometry=gpd.points_from_xy([], []), crs="EPSG:4326"
        )
    return gpd.GeoDataFrame(
        gpd.pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326"
    )
