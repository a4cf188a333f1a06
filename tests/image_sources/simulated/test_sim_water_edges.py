"""Water-edge sampling on the simulated occurrence raster, and shores where it samples."""

from __future__ import annotations

import geopandas as gpd
import shapely

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.image_sources.simulated.patch_scenes import compose_patch
from dam_detection.image_sources.simulated.render import patch_rng
from dam_detection.image_sources.simulated.water_occurrence import shore_direction

REGIONS = gpd.GeoDataFrame(
    {"name": ["arizona", "alps"]},
    geometry=[shapely.box(-111.6, 33.4, -111.3, 33.6), shapely.box(10.0, 45.0, 10.2, 45.1)],
    crs="EPSG:4326",
)


def test_sampling_is_seeded_and_inside_the_regions() -> None:
    earth = SimulatedEarth(seed=42)
    first = earth.water_edge_points(REGIONS, WaterEdgeSampling(seed=1, factor=0.2))
    again = earth.water_edge_points(REGIONS, WaterEdgeSampling(seed=1, factor=0.2))
    other = earth.water_edge_points(REGIONS, WaterEdgeSampling(seed=2, factor=0.2))
    assert len(first) > 10 and first.crs.to_epsg() == 4326
    assert first.geometry.equals(again.geometry)
    assert not first.geometry.equals(other.geometry)
    for region, polygon in zip(REGIONS["name"], REGIONS.geometry, strict=True):
        points = first[first["region"] == region]
        assert len(points) > 0 and points.within(polygon).all()


def test_factor_and_cap_limit_the_sample() -> None:
    earth = SimulatedEarth(seed=42)
    many = earth.water_edge_points(REGIONS, WaterEdgeSampling(factor=1.0))
    few = earth.water_edge_points(REGIONS, WaterEdgeSampling(factor=0.1))
    capped = earth.water_edge_points(
        REGIONS, WaterEdgeSampling(factor=1.0, max_points_per_region=5)
    )
    assert len(few) < 0.2 * len(many)
    assert capped["region"].value_counts().max() == 5


def test_a_sampled_point_renders_a_shore_at_the_centre() -> None:
    points = SimulatedEarth(seed=42).water_edge_points(REGIONS, WaterEdgeSampling(factor=0.05))
    for point in points.geometry[:6]:
        facing = shore_direction(point.x, point.y, 42)
        assert facing is not None
        rng = patch_rng(7, point.x, point.y, "water_edge")
        canvas, _ = compose_patch("water_edge", 33, rng, facing)
        water = canvas.is_water()[12:21, 12:21]
        assert water.any() and not water.all()
