"""The simulated planet's reflectance against a real Earth Engine export of the same kind.

The reference is the real table export in ``../shared/data/gee_samples/`` (two 257 x 257
Sentinel-2 patches around water edges, B2/B3/B4). Stated tolerance: the 1st, 50th and 99th
percentile of each band within 0.08 reflectance of the real one. The planet is deliberately a
little wider (darker water, brighter bare ground: its 1st-99th range is about twice the
sample's), so the models see more contrast than two patches of one region show; the medians agree
within 0.025 (water edges of three places of the planet, several landscapes, against two patches
of one real place; measured 0.000 / 0.020 / 0.012 for B2 / B3 / B4).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from dam_detection.image_sources.base import CompositeWindow, PatchRequest, WaterEdgeSampling
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.tfrecord_codec import decode_example, iter_records, open_record_stream
from tests.conftest import shared_file

BANDS = ("B2", "B3", "B4")
PERCENTILES = (1, 50, 99)
TOLERANCE = 0.08
MEDIAN_TOLERANCE = 0.025


def band_percentiles(records: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {
        band: np.percentile(np.concatenate([r[band] for r in records if band in r]), PERCENTILES)
        for band in BANDS
    }


@pytest.mark.slow
def test_water_edge_patches_have_real_reflectances():
    with shared_file("gee_samples/table_export_water_edges.tfrecord").open("rb") as handle:
        real = [decode_example(r) for r in iter_records(open_record_stream(handle))]
    earth = SimulatedEarth(
        seed=42, cloud_rate=0.0, void_rate=0.0, missing_band_rate=0.0, workers=1, tile_px=512
    )
    # Three places, several landscapes: one place is one biome.
    regions = gpd.GeoDataFrame(
        {"name": ["a", "b", "c"]},
        geometry=[box(-110.4, 37.7, -110.35, 37.74), box(-95.0, 40.0, -94.95, 40.04),
                  box(-82.0, 35.0, -81.95, 35.04)],
        crs=4326,
    )  # fmt: skip
    sampling = WaterEdgeSampling(factor=1.0, max_points_per_region=8)
    edges = earth.water_edge_points(regions, sampling)
    count = len(edges)
    points = gpd.GeoDataFrame(
        {"point_index": range(count), "kind": "water_edge", "label": 0},
        geometry=edges.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    request = PatchRequest(
        composite=CompositeWindow("2019-04-01", "2019-10-01", 20.0),  # the real sample's season
        bands=BANDS, radius=128, points_per_file=count, label_key="class",
    )  # fmt: skip
    simulated = [
        decode_example(r) for f in earth.patch_files(points, request).values() for r in f()
    ]
    want, got = band_percentiles(real), band_percentiles(simulated)
    for band in BANDS:
        np.testing.assert_allclose(got[band], want[band], atol=TOLERANCE, err_msg=band)
        assert abs(got[band][1] - want[band][1]) < MEDIAN_TOLERANCE
