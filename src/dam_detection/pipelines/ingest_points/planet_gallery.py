"""The planet's gallery: every kind of structure it builds, as the patch export renders it.

The patch gallery shows the points table's kinds (dam, bridge, water edge, random). This one
shows what those points stand on: each kind of dam the planet builds (across a valley, a farm
pond, a weir) and each look-alike (bridge, levee, lake outlet, quarry, tailings pond), taken
from its truth and rendered by the same patch export that makes the training data. For real
imagery (no truth) it says so.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from matplotlib.figure import Figure

from dam_detection.bands import POINT_INDEX_KEY
from dam_detection.image_sources.base import make_image_source
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.pipelines.gee_export.gallery import draw_gallery, sample_patches_by_kind
from dam_detection.pipelines.gee_export.settings import (
    CompositeWindowSettings,
    GallerySettings,
    PatchExportSettings,
)

#: Rows of the gallery, in order: the dams, then what looks like one.
PLANET_KINDS = (
    "reservoir", "farm_pond", "weir", "bridge", "levee", "lake_outlet", "quarry", "tailings",
)  # fmt: skip


def planet_examples(
    truth: gpd.GeoDataFrame, lookalikes: gpd.GeoDataFrame, per_kind: int
) -> gpd.GeoDataFrame:
    """The first ``per_kind`` structures of each kind, as a points table the export takes.

    A table without rows may come back from its file without columns (an empty GeoJSON holds
    no properties): it contributes nothing.
    """
    parts = [
        frame[["kind", "geometry"]].assign(label=label)
        for frame, label in ((truth, 1.0), (lookalikes, 0.0))
        if len(frame) and "kind" in frame.columns
    ]
    if not parts:
        return gpd.GeoDataFrame(
            {"kind": [], "label": [], POINT_INDEX_KEY: []},
            geometry=gpd.points_from_xy([], []),
            crs="EPSG:4326",
        )
    both = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")
    chosen = both[both["kind"].isin(PLANET_KINDS)].groupby("kind", sort=False).head(per_kind)
    return chosen.reset_index(drop=True).assign(**{POINT_INDEX_KEY: lambda t: t.index})


def render_planet_gallery(
    planet_truth: gpd.GeoDataFrame,
    planet_lookalikes: gpd.GeoDataFrame,
    image_source: ImageSourceSettings,
    bands: list[str],
    patch_radius: int,
    seed: int,
    composite: CompositeWindowSettings,
    patches: PatchExportSettings,
    settings: GallerySettings,
) -> Figure:
    """One row per kind of structure (:data:`PLANET_KINDS`), ``patches_per_kind`` patches each,
    rendered with the patch export's settings (``gee_export.composite``, ``.patches``).

    Returns:
        The figure, saved by the ``planet_gallery`` dataset; with no truth (Earth Engine) a
        figure that says so.
    """
    from dam_detection.pipelines.gee_export.nodes import build_patch_request

    examples = planet_examples(planet_truth, planet_lookalikes, settings.patches_per_kind)
    if examples.empty:
        figure = draw_gallery({}, settings.patches_per_kind, settings.reflectance_max)
        figure.suptitle("No planet truth: the image source publishes none (real imagery)")
        return figure
    request = build_patch_request(bands, patch_radius, seed, composite, patches)
    source = make_image_source(image_source, seed)
    files = source.patch_files(examples, request)
    records = (record for produce in files.values() for record in produce())
    kind_of = dict(zip(examples[POINT_INDEX_KEY], examples["kind"], strict=True))
    present = [kind for kind in PLANET_KINDS if kind in set(examples["kind"])]
    samples = sample_patches_by_kind(records, kind_of, present, settings.patches_per_kind)
    figure = draw_gallery(samples, settings.patches_per_kind, settings.reflectance_max)
    figure.suptitle(
        "The planet's structures by kind, as the patch export renders them (RGB 0-"
        f"{settings.reflectance_max:g}; NDWI -1 red to 1 blue; elevation per patch)",
        fontsize=9,
    )
    return figure
