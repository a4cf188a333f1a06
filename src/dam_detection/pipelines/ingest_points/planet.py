"""Nodes that involve the simulated planet: it publishes inventories, and audits the points.

``publish_planet_inventories`` runs first: its files are the ``point_sources`` entries marked
``published_by: planet``, read back by ``combine_candidates`` like any user's inventory. The
audit compares the selected points with the planet's truth, which nothing else in
``ingest_points`` may see: it counts what a user could not know, such as negatives that landed
on a dam no inventory lists.
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from dam_detection.detection.settings import DetectionSettings
from dam_detection.image_sources.base import make_image_source
from dam_detection.image_sources.settings import ImageSourceSettings

logger = logging.getLogger(__name__)

#: Source names under which the planet publishes (``point_sources`` entries of conf/base).
PUBLISHED_SOURCES = ("planet_dams", "planet_large_dams", "planet_bridges")

_TRUTH_COLUMNS = (
    "dam_id", "kind", "material", "reservoir_km2", "listed_national", "listed_large",
    "listed_id", "listed_offset_m",
)  # fmt: skip


def publish_planet_inventories(
    regions: gpd.GeoDataFrame,
    scan_region: gpd.GeoDataFrame,
    image_source: ImageSourceSettings,
    seed: int,
) -> tuple[dict[str, Any], gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The planet's inventories of the regions and of the scan's region, its truth and its
    look-alikes (both empty for real imagery).

    Args:
        regions: Region polygons (``ingest_points.regions``).
        scan_region: The region the ``scan`` pipeline searches: its dams are listed (or not)
            in the same inventories, as a user's inventory covers the area they scan.
        image_source: ``params:image_source``; only the simulated planet publishes.
        seed: ``params:seed``.

    Returns:
        ``(published, truth, lookalikes)``: source name to file content for
        ``point_sources``; every dam of the regions (its kind too) with whether and where each
        inventory lists it; every bridge, levee, lake outlet, quarry and tailings pond.
    """
    if image_source.kind != "simulated" or not image_source.simulated.inventories.publish:
        logger.info("the planet publishes no inventories: point_sources holds the user's own")
        empty = gpd.GeoDataFrame(
            {column: [] for column in _TRUTH_COLUMNS},
            geometry=gpd.points_from_xy([], []),
            crs="EPSG:4326",
        )
        no_lookalikes = gpd.GeoDataFrame(
            {"kind": []}, geometry=gpd.points_from_xy([], []), crs="EPSG:4326"
        )
        return {}, empty, no_lookalikes
    planet = make_image_source(image_source, seed)
    publication = planet.publish_inventories(regions)  # type: ignore[attr-defined]
    # The scan's region beyond the training regions is published on its own, its ids after
    # the first publication's: the training regions' files stay what they were without a scan.
    trained = shapely.union_all(regions.to_crs("EPSG:4326").geometry.to_numpy())
    beyond = shapely.union_all(scan_region.to_crs("EPSG:4326").geometry.to_numpy()).difference(
        trained
    )
    if not beyond.is_empty:
        scan_part = planet.publish_inventories(  # type: ignore[attr-defined]
            gpd.GeoDataFrame(geometry=[beyond], crs="EPSG:4326"), first_serial=SCAN_SERIALS
        )
        publication = _joined(publication, scan_part)
    truth = publication.truth
    logger.info(
        "the planet published %d of its %d dams (%d in the large-dams file) and %d bridges",
        int(truth["listed_national"].sum()),
        len(truth),
        len(publication.large_dams),
        publication.bridges_nbi.count("\n"),
    )
    published = dict(
        zip(
            PUBLISHED_SOURCES,
            (publication.national_dams, publication.large_dams, publication.bridges_nbi),
            strict=True,
        )
    )
    return published, truth, publication.lookalikes


#: Where the record ids of the scan region's own publication start.
SCAN_SERIALS = 50_000


def _joined(first: Any, second: Any) -> Any:
    """Two publications of separate areas as one (the same files, more records)."""
    from dataclasses import replace

    return replace(
        first,
        national_dams=gpd.GeoDataFrame(
            pd.concat([first.national_dams, second.national_dams], ignore_index=True),
            crs="EPSG:4326",
        ),
        large_dams=pd.concat([first.large_dams, second.large_dams], ignore_index=True),
        bridges_nbi=first.bridges_nbi + second.bridges_nbi,
        truth=gpd.GeoDataFrame(
            pd.concat([first.truth, second.truth], ignore_index=True), crs="EPSG:4326"
        ),
        lookalikes=gpd.GeoDataFrame(
            pd.concat([first.lookalikes, second.lookalikes], ignore_index=True), crs="EPSG:4326"
        ),
    )


def audit_points(
    points: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, detection: DetectionSettings
) -> dict[str, Any]:
    """What the planet's truth says about the selected points (simulated planet only).

    Args:
        points: The points table.
        truth: ``planet_truth`` (empty for real imagery).
        detection: ``params:detection``: its ``tolerance_m`` is how close counts as "on".

    Returns:
        Counts for ``data/08_reporting/planet_audit.json``: negatives whose centre lies on a
        dam (listed or not), dams whose listed point is far from the wall, and how many of
        the planet's dams the training points list.
    """
    if truth.empty:
        return {"truth": "none: the image source is not the simulated planet"}
    tolerance = float(detection.tolerance_m)
    utm = points.estimate_utm_crs()
    walls = truth.to_crs(utm)
    located = points.to_crs(utm)
    nearest = gpd.sjoin_nearest(
        located[["point_id", "kind", "label", "geometry"]],
        walls[["dam_id", "listed_national", "geometry"]],
        how="left",
        distance_col="wall_distance_m",
    ).drop_duplicates("point_id")
    negatives = nearest[nearest["label"] == 0]
    on_dam = negatives[negatives["wall_distance_m"] <= tolerance]
    dams = nearest[nearest["label"] == 1]
    offsets = dams["wall_distance_m"].to_numpy()
    listed = truth[truth["listed_national"]]
    return {
        "tolerance_m": tolerance,
        "planet_dams": len(truth),
        "planet_dams_listed": len(listed),
        "planet_dams_unlisted": int(len(truth) - len(listed)),
        "negatives": len(negatives),
        "negatives_on_a_dam": len(on_dam),
        "negatives_on_an_unlisted_dam": int((~on_dam["listed_national"].astype(bool)).sum()),
        "negatives_on_a_dam_by_kind": {
            str(kind): int(count) for kind, count in on_dam["kind"].value_counts().items()
        },
        "dam_points": len(dams),
        "dam_point_to_wall_m": _quantiles(offsets),
        "dam_points_farther_than_tolerance": int((offsets > tolerance).sum()),
    }


def _quantiles(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    q = np.quantile(values, [0.5, 0.9, 0.99, 1.0])
    return {
        name: round(float(v), 1) for name, v in zip(("p50", "p90", "p99", "max"), q, strict=True)
    }
