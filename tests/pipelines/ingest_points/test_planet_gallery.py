"""The planet gallery: a row of real patch exports for every kind of structure the planet
published in its truth, and a plain statement where there is no truth (real imagery)."""

from __future__ import annotations

import geopandas as gpd
import shapely

from dam_detection.pipelines.gee_export.settings import (
    CompositeWindowSettings,
    GallerySettings,
    PatchExportSettings,
)
from dam_detection.pipelines.ingest_points.planet import publish_planet_inventories
from dam_detection.pipelines.ingest_points.planet_gallery import (
    PLANET_KINDS,
    planet_examples,
    render_planet_gallery,
)
from tests.settings import base_settings, simulated_source

AREA = shapely.box(-110.42, 37.68, -110.30, 37.78)
CROWDED = {"dams": 40.0, "bridges": 20.0, "lakes": 10.0, "levees": 10.0, "farm_ponds": 40.0,
           "weirs": 20.0, "quarries": 8.0, "tailings": 8.0}  # fmt: skip


def render(truth: gpd.GeoDataFrame, lookalikes: gpd.GeoDataFrame, source) -> object:
    return render_planet_gallery(
        truth, lookalikes, source, ["B2", "B3", "B4", "NDWI", "AVE"], 16, 1,
        base_settings(CompositeWindowSettings, "gee_export.composite"),
        base_settings(PatchExportSettings, "gee_export.patches"),
        GallerySettings(patches_per_kind=1, reflectance_max=0.3, kinds=[]),
    )  # fmt: skip


def row_labels(figure) -> list[str]:
    return [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()]


def test_every_kind_the_planet_built_has_its_row_of_patches():
    source = simulated_source(seed=5, density=CROWDED)
    regions = gpd.GeoDataFrame({"name": ["r"]}, geometry=[AREA], crs=4326)
    _, truth, lookalikes = publish_planet_inventories(regions, regions.iloc[0:0], source, 42)
    examples = planet_examples(truth, lookalikes, 1)
    built = set(examples["kind"])
    assert {"reservoir", "farm_pond", "bridge"} <= built <= set(PLANET_KINDS)
    figure = render(truth, lookalikes, source)
    # One row per kind built, in the gallery's order, each with its patch drawn (a band whose
    # centre pixel is masked is left out of a record, as Earth Engine does: that panel says so).
    assert row_labels(figure) == [kind for kind in PLANET_KINDS if kind in built]
    rgb = [axis for axis in figure.axes if axis.get_title().endswith("RGB")]
    assert len(rgb) == len(built) and all(axis.images for axis in rgb)


def test_without_truth_the_gallery_says_so():
    nothing = gpd.GeoDataFrame({"kind": []}, geometry=gpd.points_from_xy([], []), crs=4326)
    figure = render(nothing, nothing, simulated_source())
    assert "No planet truth" in figure.get_suptitle()
    # As an empty truth comes back from its GeoJSON file: no columns at all.
    bare = gpd.GeoDataFrame(geometry=gpd.points_from_xy([], []), crs=4326)
    assert "No planet truth" in render(bare, bare, simulated_source()).get_suptitle()
