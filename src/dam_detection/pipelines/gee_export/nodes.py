"""Nodes of ``gee_export``: plan the patch and scene exports, preview sample patches.

The export nodes only *plan*: the image source hands back lazy record producers and the
``patches`` and ``scenes`` datasets run them while saving, each file written atomically, so a
re-run skips complete files and no node does file I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import geopandas as gpd
from matplotlib.figure import Figure
from pydantic import ValidationError

from dam_detection.bands import POINT_INDEX_KEY, PatchGeometry, validate_band_names
from dam_detection.datasets.export_plan import ExportPlan, fingerprint
from dam_detection.datasets.tfrecord_files import TFRecordFiles
from dam_detection.image_sources.base import (
    CompositeWindow,
    PatchRequest,
    RecordChunk,
    SceneExport,
    SceneRequest,
    make_image_source,
)
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.pipelines.gee_export.gallery import (
    draw_gallery,
    interleave_files,
    sample_patches_by_kind,
)
from dam_detection.pipelines.gee_export.settings import (
    CompositeWindowSettings,
    GallerySettings,
    PatchExportSettings,
    SceneDefinition,
    SceneExportSettings,
)


def composite_window(settings: CompositeWindowSettings) -> CompositeWindow:
    """The one composite window of a run, handed to every patch and scene request."""
    return CompositeWindow(
        start_date=settings.start_date.isoformat(),
        end_date=settings.end_date.isoformat(),
        max_cloud_percent=float(settings.max_cloud_percent),
    )


def build_patch_request(
    bands: Sequence[str],
    patch_radius: int,
    seed: int,
    composite: CompositeWindowSettings,
    settings: PatchExportSettings,
) -> PatchRequest:
    """The patch request the shared and ``gee_export.patches`` parameters describe.

    Args:
        bands: ``params:bands``.
        patch_radius: ``params:patch_radius``.
        seed: ``params:seed``.
        composite: ``params:gee_export.composite``.
        settings: ``params:gee_export.patches``.

    Returns:
        The request handed to the image source.

    Raises:
        ValueError: If the radius is negative or the band list is empty or repeats a band.
    """
    PatchGeometry(patch_radius)  # rejects a negative radius
    return PatchRequest(
        bands=validate_band_names(bands),
        radius=int(patch_radius),
        scale_m=float(settings.scale_m),
        composite=composite_window(composite),
        label_key=settings.label_key,
        points_per_file=int(settings.points_per_file),
        seed=int(seed),
    )


def export_patches(
    points: gpd.GeoDataFrame,
    image_source: ImageSourceSettings,
    bands: Sequence[str],
    patch_radius: int,
    seed: int,
    composite: CompositeWindowSettings,
    settings: PatchExportSettings,
) -> ExportPlan[RecordChunk]:
    """Plan the table export of one patch around every point.

    Args:
        points: The points table (``point_index``, ``kind``, ``label``, ``geometry``).
        image_source: ``params:image_source``.
        bands: ``params:bands``.
        patch_radius: ``params:patch_radius``.
        seed: ``params:seed``.
        composite: ``params:gee_export.composite``.
        settings: ``params:gee_export.patches``.

    Returns:
        The plan for the ``patches`` dataset: file stem (``patches-00000``, ...) to its lazy
        records, fingerprinted by the request, the source and the points (a re-run resumes only
        files made with the same ones), and where the source's producers may run.

    Raises:
        ValueError: If the points table lacks a column the export needs, or is empty.
    """
    missing = {POINT_INDEX_KEY, "kind", "label", "geometry"} - set(points.columns)
    if missing:
        raise ValueError(
            f"the points table lacks columns {sorted(missing)}; re-run ingest_points "
            "(kedro run --pipelines ingest_points)"
        )
    if points.empty:
        raise ValueError("the points table is empty: nothing to export; check ingest_points")
    request = build_patch_request(bands, patch_radius, seed, composite, settings)
    ordered = points.sort_values(POINT_INDEX_KEY).to_crs(4326)
    rows = zip(
        ordered[POINT_INDEX_KEY].astype(int),
        ordered["kind"].astype(str),
        ordered["label"].astype(float),
        ordered.geometry.x.round(9),
        ordered.geometry.y.round(9),
        strict=True,
    )
    settings_fingerprint = fingerprint(
        {"request": asdict(request), "source": _source_identity(image_source), "points": list(rows)}
    )
    source = make_image_source(image_source, seed)
    files = source.patch_files(ordered, request)
    return ExportPlan(files, settings_fingerprint, source.runs_in)


def build_scene_requests(
    scenes: Sequence[Mapping[str, Any] | SceneDefinition],
    bands: Sequence[str],
    seed: int,
    composite: CompositeWindowSettings,
    settings: SceneExportSettings,
) -> list[SceneRequest]:
    """One scene request per entry of ``gee_export.scenes``.

    Args:
        scenes: ``params:gee_export.scenes`` (fields of :class:`SceneDefinition`).
        bands: ``params:bands``.
        seed: ``params:seed``.
        composite: ``params:gee_export.composite``, the patches' window too.
        settings: ``params:gee_export.scene_export``.

    Returns:
        The requests, in configuration order.

    Raises:
        ValueError: On an invalid entry, a repeated name or a scene smaller than one patch.
    """
    patch_w, patch_h = settings.patch_dimensions
    kernel_x, kernel_y = settings.kernel_size
    requests: list[SceneRequest] = []
    names: set[str] = set()
    for position, entry in enumerate(scenes):
        # Kedro hands a list parameter over as raw dictionaries: validate each entry here.
        try:
            scene = SceneDefinition.model_validate(entry)
        except ValidationError as error:
            raise ValueError(f"gee_export.scenes[{position}]: {error}") from None
        if scene.name in names:
            raise ValueError(
                f"gee_export.scenes[{position}]: name {scene.name!r} is used twice; scene names "
                "become folder names and must be unique"
            )
        if scene.width_px < patch_w or scene.height_px < patch_h:
            raise ValueError(
                f"scene {scene.name}: {scene.width_px}x{scene.height_px} px holds no whole "
                f"{patch_w}x{patch_h} patch; enlarge it or shrink patch_dimensions"
            )
        names.add(scene.name)
        requests.append(
            SceneRequest(
                name=scene.name,
                center_lon=float(scene.center_lon),
                center_lat=float(scene.center_lat),
                composite=composite_window(composite),
                width_px=int(scene.width_px),
                height_px=int(scene.height_px),
                bands=validate_band_names(bands),
                scale_m=float(settings.scale_m),
                patch_dimensions=(patch_w, patch_h),
                kernel_size=(kernel_x, kernel_y),
                file_prefix=settings.file_prefix,
                max_file_size_bytes=int(settings.max_file_size_bytes),
                seed=int(seed),
                options=dict(scene.options),
            )
        )
    return requests


def export_scenes(
    image_source: ImageSourceSettings,
    scenes: Sequence[Mapping[str, Any] | SceneDefinition],
    bands: Sequence[str],
    seed: int,
    composite: CompositeWindowSettings,
    settings: SceneExportSettings,
) -> ExportPlan[SceneExport]:
    """Plan the image export of every configured scene.

    Args:
        image_source: ``params:image_source``.
        scenes: ``params:gee_export.scenes``.
        bands: ``params:bands``.
        seed: ``params:seed``.
        composite: ``params:gee_export.composite``.
        settings: ``params:gee_export.scene_export``.

    Returns:
        The plan for the ``scenes`` dataset: scene name to its lazy export, each fingerprinted
        by its request and the source (a re-run skips only scenes made with the same ones).
    """
    source = make_image_source(image_source, seed)
    requests = build_scene_requests(scenes, bands, seed, composite, settings)
    identity = _source_identity(image_source)
    fingerprints = {
        request.name: fingerprint({"request": asdict(request), "source": identity})
        for request in requests
    }
    return ExportPlan(
        {request.name: source.scene_export(request) for request in requests},
        fingerprint(fingerprints),
        source.runs_in,
        item_fingerprints=fingerprints,
    )


def _source_identity(image_source: ImageSourceSettings) -> dict[str, Any]:
    # What decides the pixels: the chosen source's settings. Unset options are left out so that
    # adding an optional setting does not invalidate finished exports; where the planet keeps
    # its composed tiles decides nothing.
    return image_source.model_dump(exclude_none=True, exclude={"simulated": {"tile_cache"}})


def render_patch_gallery(
    patches: TFRecordFiles,
    points: gpd.GeoDataFrame,
    settings: GallerySettings,
) -> Figure:
    """A preview of sample patches of every kind: RGB, NDWI and elevation side by side.

    Reads records lazily, one from each file in turn (files hold runs of similar points), and
    stops once every kind has its samples.

    Args:
        patches: The saved ``patches`` files.
        points: The points table, to tell each record's kind from its ``point_index``.
        settings: ``params:gee_export.gallery``.

    Returns:
        The figure, saved by the ``patch_gallery`` dataset.
    """
    kind_of = dict(
        zip(points[POINT_INDEX_KEY].astype(int), points["kind"].astype(str), strict=True)
    )
    kinds = list(settings.kinds) or _kinds_in_order(points["kind"].astype(str).unique())
    samples = sample_patches_by_kind(
        interleave_files(patches),
        kind_of,
        kinds,
        settings.patches_per_kind,
    )
    return draw_gallery(samples, settings.patches_per_kind, settings.reflectance_max)


def _kinds_in_order(kinds: Sequence[str]) -> list[str]:
    # Dams first, then the negatives most easily confused with them.
    preferred = ["dam", "bridge", "water_edge", "random"]
    return [k for k in preferred if k in kinds] + sorted(set(kinds) - set(preferred))
