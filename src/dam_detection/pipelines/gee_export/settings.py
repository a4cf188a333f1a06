"""Typed settings of ``gee_export`` (Kedro validates ``params:`` inputs against them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PatchExportSettings:
    """``gee_export.patches``: the table export of one patch per point.

    Attributes:
        scale_m: Pixel size in metres.
        start_date: First day of the Sentinel-2 composite, ISO format.
        end_date: Day after its last day, ISO format.
        max_cloud_percent: Scenes at or above this cloudy-pixel percentage are skipped.
        label_key: Name of the label feature (this project writes ``label``).
        points_per_file: Records per output file.
    """

    scale_m: float = 10.0
    start_date: str = "2019-04-01"
    end_date: str = "2019-10-01"
    max_cloud_percent: float = 20.0
    label_key: str = "label"
    points_per_file: int = 200


@dataclass(frozen=True)
class SceneExportSettings:
    """``gee_export.scene_export``: settings every scene export shares.

    Attributes:
        patch_dimensions: Unbuffered patch ``[w, h]`` (Earth Engine's ``patchDimensions``).
        kernel_size: Overlap ``[kx, ky]`` (``kernelSize``); at least the segmentation model's
            receptive field, so patch borders can be cropped away.
        file_prefix: Prefix of the patch files and the mixer.
        max_file_size_bytes: Earth Engine's ``maxFileSize``.
        scale_m: Pixel size in metres.
    """

    patch_dimensions: list[int] = field(default_factory=lambda: [256, 256])
    kernel_size: list[int] = field(default_factory=lambda: [128, 128])
    file_prefix: str = "scene"
    max_file_size_bytes: int = 104_857_600
    scale_m: float = 10.0


@dataclass(frozen=True)
class SceneDefinition:
    """One entry of ``gee_export.scenes``.

    Attributes:
        name: Scene name and folder name (letters, digits, ``_`` and ``-``).
        center_lon: Longitude of the centre, degrees.
        center_lat: Latitude of the centre, degrees.
        width_px: Width in pixels.
        height_px: Height in pixels.
        options: Source-specific extras (e.g. how many dams a simulated scene holds).
    """

    name: str
    center_lon: float
    center_lat: float
    width_px: int = 2048
    height_px: int = 2048
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GallerySettings:
    """``gee_export.gallery``: the preview of sample patches.

    Attributes:
        patches_per_kind: Sample patches shown for each point kind.
        reflectance_max: Reflectance shown as full brightness in RGB (0-0.3 is a usual stretch).
        kinds: Kinds to show, in row order; empty shows every kind of the points table.
    """

    patches_per_kind: int = 3
    reflectance_max: float = 0.3
    kinds: list[str] = field(default_factory=list)
