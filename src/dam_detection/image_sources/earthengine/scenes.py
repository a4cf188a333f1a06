"""Scene exports: ``Export.image`` in TFRecord patches plus the mixer, on a grid fixed in advance.

The export names an explicit ``crs``, ``crsTransform`` and ``dimensions`` rather than a region
and a scale. Earth Engine then has no freedom to snap the grid, so the mixer it writes can be
predicted exactly before the task runs, and the one it does write is checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ee
from pyproj import CRS, Transformer

from dam_detection.image_sources.base import SceneRequest
from dam_detection.mixer import Mixer, MixerError, mosaic_layout

#: Metres per degree on Earth Engine's sphere (WGS84 semi-major axis): the scale Earth Engine
#: uses for "metres" in EPSG:4326, e.g. 10 m -> 8.983152841195215e-05 degrees.
METRES_PER_DEGREE = 2 * math.pi * 6378137.0 / 360.0
#: Earth Engine refuses exports above ``maxPixels`` (default 1e8); scenes are sized by the user.
MAX_PIXELS = 10_000_000_000


@dataclass(frozen=True)
class SceneGrid:
    """The pixel grid of one scene export.

    Attributes:
        crs: Output CRS, e.g. ``EPSG:4326`` or ``EPSG:32612``.
        transform: ``[xScale, xShear, xTranslation, yShear, yScale, yTranslation]``.
        width_px: Exported width: whole patches only.
        height_px: Exported height: whole patches only.
        patches_per_row: Patches in one row.
        total_patches: Patches in the scene.
    """

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width_px: int
    height_px: int
    patches_per_row: int
    total_patches: int


def scene_grid(scene: SceneRequest, crs: str = "EPSG:4326") -> SceneGrid:
    """Centre a ``width_px x height_px`` grid of ``scale_m`` pixels on the scene's centre.

    The size is trimmed to whole patches first, as Earth Engine drops partial border tiles.
    In a geographic CRS the pixel is ``scale_m`` converted to degrees the way Earth Engine does.
    """
    per_row, rows = mosaic_layout(scene.width_px, scene.height_px, scene.patch_dimensions)
    width = per_row * scene.patch_dimensions[0]
    height = rows * scene.patch_dimensions[1]
    target = CRS.from_user_input(crs)
    if target.is_geographic:
        pixel = scene.scale_m / METRES_PER_DEGREE
        center_x, center_y = scene.center_lon, scene.center_lat
    else:
        pixel = scene.scale_m
        to_target = Transformer.from_crs("EPSG:4326", target, always_xy=True)
        center_x, center_y = to_target.transform(scene.center_lon, scene.center_lat)
        # Snap to the pixel lattice of the projection, as Sentinel-2's own UTM grid is.
        center_x, center_y = round(center_x / pixel) * pixel, round(center_y / pixel) * pixel
    transform = (
        pixel,
        0.0,
        center_x - width / 2 * pixel,
        0.0,
        -pixel,
        center_y + height / 2 * pixel,
    )
    return SceneGrid(crs, transform, width, height, per_row, per_row * rows)


def grid_footprint(grid: SceneGrid) -> ee.Geometry:
    """The grid's outline as a planar rectangle in its own CRS, for ``filterBounds``."""
    x_scale, _, x0, _, y_scale, y0 = grid.transform
    x1, y1 = x0 + x_scale * grid.width_px, y0 + y_scale * grid.height_px
    return ee.Geometry.Rectangle(
        [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)],
        proj=grid.crs,
        geodesic=False,
    )


def planned_mixer(grid: SceneGrid, scene: SceneRequest) -> dict[str, Any]:
    """The ``<prefix>-mixer.json`` Earth Engine will write for this grid."""
    return Mixer(
        crs=grid.crs,
        affine=grid.transform,
        patch_width=scene.patch_dimensions[0],
        patch_height=scene.patch_dimensions[1],
        patches_per_row=grid.patches_per_row,
        total_patches=grid.total_patches,
    ).to_json()


def check_mixer(actual: Mapping[str, Any], planned: Mapping[str, Any], source: str) -> None:
    """Raise if the exported mixer disagrees with the planned grid.

    Raises:
        MixerError: Naming the field that differs.
    """
    got, want = Mixer.from_json(actual, source), Mixer.from_json(planned, "planned grid")
    differences = [
        name
        for name in ("crs", "patch_width", "patch_height", "patches_per_row", "total_patches")
        if getattr(got, name) != getattr(want, name)
    ]
    if not all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        for a, b in zip(got.affine, want.affine, strict=True)
    ):
        differences.append("affine")
    if differences:
        raise MixerError(
            f"{source} differs from the planned export grid in {differences}: got {actual}, "
            f"planned {dict(planned)}; delete the scene's manifest entry and export it again"
        )


def scene_export_task(
    image: ee.Image,
    grid: SceneGrid,
    scene: SceneRequest,
    *,
    description: str,
    file_prefix: str,
    destination: str,
    bucket: str | None,
    drive_folder: str | None,
) -> ee.batch.Task:
    """An unsubmitted ``Export.image`` task writing gzip TFRecord patches and a mixer.

    Args:
        image: The band stack, bands in output order.
        grid: From :func:`scene_grid`.
        scene: Patch and kernel sizes, file size limit.
        description: Task name shown in the Earth Engine task list.
        file_prefix: Object name prefix (Cloud Storage) or file name prefix (Drive).
        destination: ``cloud_storage`` or ``drive``.
        bucket: Cloud Storage bucket (``cloud_storage``).
        drive_folder: Drive folder (``drive``).
    """
    options: dict[str, Any] = {
        "image": image,
        "description": description,
        "fileNamePrefix": file_prefix,
        "crs": grid.crs,
        "crsTransform": list(grid.transform),
        "dimensions": f"{grid.width_px}x{grid.height_px}",
        "fileFormat": "TFRecord",
        "maxPixels": MAX_PIXELS,
        "formatOptions": {
            "patchDimensions": list(scene.patch_dimensions),
            "compressed": True,
            "maxFileSize": int(scene.max_file_size_bytes),
        },
    }
    if any(scene.kernel_size):
        # No kernel: patches without a buffer (a scan tile's grid carries its own halo).
        options["formatOptions"]["kernelSize"] = list(scene.kernel_size)
    if destination == "cloud_storage":
        return ee.batch.Export.image.toCloudStorage(bucket=bucket, **options)
    if destination == "drive":
        return ee.batch.Export.image.toDrive(folder=drive_folder, **options)
    raise ValueError(f"destination must be 'cloud_storage' or 'drive', got {destination!r}")


__all__ = [
    "MixerError",
    "SceneGrid",
    "check_mixer",
    "grid_footprint",
    "planned_mixer",
    "scene_export_task",
    "scene_grid",
]
