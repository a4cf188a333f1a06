"""Typed settings of ``gee_export`` (``conf/base/parameters_gee_export.yml``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, field_validator, model_validator

from dam_detection.parameters.model import Settings


class CompositeWindowSettings(Settings):
    """``gee_export.composite``: the images every export composites, patches and scenes alike."""

    start_date: dt.date
    """First day of the Sentinel-2 median composite, ISO format."""
    end_date: dt.date
    """Day after its last day, ISO format."""
    max_cloud_percent: float = Field(ge=0, le=100)
    """Images whose ``CLOUDY_PIXEL_PERCENTAGE`` is at or above this are left out."""

    @model_validator(mode="after")
    def _dates_in_order(self) -> CompositeWindowSettings:
        if self.start_date >= self.end_date:
            raise ValueError(f"start_date {self.start_date} is not before end_date {self.end_date}")
        return self


class PatchExportSettings(Settings):
    """``gee_export.patches``: the table export of one patch per point."""

    scale_m: float = Field(gt=0)
    """Pixel size in metres."""
    label_key: str
    """Name of the label feature (this project writes ``label``; older exports ``class``)."""
    points_per_file: int = Field(ge=1)
    """Records per output file: small files resume finely and spread over workers."""


class SceneExportSettings(Settings):
    """``gee_export.scene_export``: settings every scene export shares."""

    patch_dimensions: tuple[int, int]
    """Unbuffered patch ``[w, h]`` (Earth Engine's ``patchDimensions``)."""
    kernel_size: tuple[int, int]
    """Overlap ``[kx, ky]`` (``kernelSize``), even; at least the segmentation model's receptive
    field, so patch borders can be cropped away."""
    file_prefix: str
    """Prefix of the patch files and the mixer."""
    max_file_size_bytes: int = Field(gt=0)
    """Earth Engine's ``maxFileSize``."""
    scale_m: float = Field(gt=0)
    """Pixel size in metres."""

    @field_validator("kernel_size")
    @classmethod
    def _even_kernel(cls, value: tuple[int, int]) -> tuple[int, int]:
        if any(size % 2 or size < 0 for size in value):
            raise ValueError(f"kernel_size must be even and >= 0, got {list(value)}")
        return value


class SceneDefinition(Settings):
    """One entry of ``gee_export.scenes``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    """Scene name and folder name (letters, digits, ``_`` and ``-``)."""
    center_lon: float = Field(ge=-180, le=180)
    """Longitude of the centre, degrees."""
    center_lat: float = Field(ge=-90, le=90)
    """Latitude of the centre, degrees."""
    width_px: int = Field(gt=0)
    """Width in pixels."""
    height_px: int = Field(gt=0)
    """Height in pixels."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Source-specific extras for a custom image source; Earth Engine ignores them and the
    simulated planet refuses them (it decides what is where: image_source.simulated)."""


class GallerySettings(Settings):
    """``gee_export.gallery``: the preview of sample patches."""

    patches_per_kind: int = Field(ge=1)
    """Sample patches shown for each point kind."""
    reflectance_max: float = Field(gt=0)
    """Reflectance shown as full brightness in RGB (0-0.3 is a usual stretch)."""
    kinds: list[str]
    """Kinds to show, in row order; empty shows every kind of the points table, dams first."""


class GeeExportSettings(Settings):
    """``gee_export``: patches around every point and large scenes."""

    composite: CompositeWindowSettings
    """The date window and cloudy-image limit of every export."""
    patches: PatchExportSettings
    """The patch table export."""
    scene_export: SceneExportSettings
    """What every scene export shares."""
    scenes: list[SceneDefinition]
    """The scenes; a list, so an environment replaces it whole."""
    gallery: GallerySettings
    """The patch gallery."""
