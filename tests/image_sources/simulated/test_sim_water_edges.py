"""Water-edge sampling on the planet's occurrence raster: seeded, inside, on real shores."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.water_occurrence import water_at
from dam_detection.image_sources.simulated.world import to_zone, zone_epsg

REGIONS = gpd.GeoDataFrame(
    {"name": ["utah", "alps"]},
    geometry=[shapely.box(-110.40, 37.70, -110.34, 37.74), shapely.box(10.0, 45.0, 10.05, 45.03)],
    crs="EPSG:4326",
)
EARTH = SimulatedEarth(seed=42, tile_px=256)


def test_sampling_is_seeded_and_inside_the_regions() -> None:
    first = EARTH.water_edge_points(REGIONS, WaterEdgeSampling(seed=1, factor=0.5))
    again = EARTH.water_edge_points(REGIONS, WaterEdgeSampling(seed=1, factor=0.5))
    other = EARTH.water_edge_points(REGIONS, WaterEdgeSampling(seed=2, factor=0.5))
    assert len(first) > 10 and first.crs.to_epsg() == 4326
    assert first.geometry.equals(again.geometry)
    assert not first.geometry.equals(other.geometry)
    for region, polygon in zip(REGIONS["name"], REGIONS.geometry, strict=True):
        points = first[first["region"] == region]
        assert len(points) > 0 and points.within(polygon).all()


def test_factor_and_cap_limit_the_sample() -> None:
    many = EARTH.water_edge_points(REGIONS, WaterEdgeSampling(factor=1.0))
    few = EARTH.water_edge_points(REGIONS, WaterEdgeSampling(factor=0.1))
    capped = EARTH.water_edge_points(
        REGIONS, WaterEdgeSampling(factor=1.0, max_points_per_region=5)
    )
    assert len(few) < 0.2 * len(many)
    assert capped["region"].value_counts().max() == 5


def test_sampled_points_lie_where_the_planets_water_meets_land() -> None:
    points = EARTH.water_edge_points(REGIONS, WaterEdgeSampling(factor=0.5))
    planet = EARTH.planet
    for point in points.geometry[:20]:
        epsg = int(zone_epsg(point.x, point.y))
        x, y = to_zone(epsg).transform(point.x, point.y)
        # Within 200 m (two occurrence pixels): water and land both.
        dx, dy = np.meshgrid(np.arange(-200, 201, 10.0), np.arange(-200, 201, 10.0))
        around = water_at(planet, epsg, x + dx, y + dy)
        assert around.any() and not around.all()
