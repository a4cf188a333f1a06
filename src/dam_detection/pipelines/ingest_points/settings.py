"""Typed settings of ``ingest_points`` (``conf/base/parameters_ingest_points.yml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dam_detection.image_sources.base import WaterEdgeSampling
from dam_detection.parameters.model import Settings


class RegionSettings(Settings):
    """One entry of ``ingest_points.regions``: where negatives are sampled."""

    name: str
    """Region name (reported with every negative drawn in it)."""
    bbox: list[float] | None = None
    """``[west, south, east, north]`` in degrees."""
    polygon: list[list[float]] | None = None
    """``[[lon, lat], ...]`` in degrees, instead of ``bbox`` (exactly one of the two)."""


class RandomNegativeSettings(Settings):
    """``ingest_points.random_negatives``: random land points."""

    count: int = Field(ge=0)
    """Points drawn over the regions by ground area, before the near-dam filter and caps."""
    seed: int | None = None
    """``null``: the shared ``seed``."""


class WaterEdgeSamplingSettings(Settings):
    """``ingest_points.water_edges.sampling``: fields of
    :class:`~dam_detection.image_sources.base.WaterEdgeSampling`.
    """

    canny_threshold: float
    """Canny threshold on water occurrence (0-100 scaled)."""
    canny_sigma: float = Field(gt=0)
    """Gaussian smoothing before edge detection, pixels."""
    max_edge_strength: float
    """Edges stronger than this (sharp man-made shores) are left out."""
    scale_m: float = Field(gt=0)
    """Pixel size of the edge image, metres."""
    factor: float = Field(gt=0, le=1)
    """Share of edge pixels sampled."""
    seed: int | None = None
    """``null``: the shared ``seed``."""
    max_points_per_region: int | None = Field(default=None, ge=0)
    """At most this many points per region; ``null``: all."""

    def sampling(self, shared_seed: int) -> WaterEdgeSampling:
        """The request the image source takes."""
        values = self.model_dump()
        values["seed"] = shared_seed if self.seed is None else self.seed
        return WaterEdgeSampling(**values)


class WaterEdgeSettings(Settings):
    """``ingest_points.water_edges``: negatives on shores and river banks."""

    enabled: bool
    """Sample water-edge negatives at all."""
    sampling: WaterEdgeSamplingSettings
    """How the image source samples them."""


class SamplingSettings(Settings):
    """``ingest_points.sampling``: seeded caps per kind after merging and the near-dam filter."""

    max_points: int | None = Field(ge=1)
    """Points kept in all; ``null`` keeps everything."""
    fractions: dict[str, float]
    """Share of ``max_points`` per kind."""
    uncapped: list[str]
    """Kinds kept whole, beside ``max_points`` (a person's reviews are few and each one counts)."""
    seed: int | None = None
    """``null``: the shared ``seed``."""


class SplitSettings(Settings):
    """``ingest_points.split``: spatial blocks, each wholly in one split."""

    block_size_km: float = Field(gt=0)
    """Side of a grid block."""
    fractions: dict[Literal["train", "val", "test"], float]
    """Share of blocks per split."""
    seed: int | None = None
    """``null``: the shared ``seed``."""


class IngestPointsSettings(Settings):
    """``ingest_points``: which inventories to read and which points to keep."""

    merge_distance_m: float = Field(ge=0)
    """Points closer than this (within and across sources) are one point."""
    min_distance_to_dam_m: float = Field(ge=0)
    """A negative closer than this to any dam of the inventory is dropped."""
    hold_out_scan_region: bool
    """Leave the points inside the scan's region out of training (they stay in
    ``inventory_dams``), so the scan is measured on a region no model has seen."""
    regions: list[RegionSettings]
    """Regions of interest for water-edge and random negatives."""
    random_negatives: RandomNegativeSettings
    """Random land points."""
    water_edges: WaterEdgeSettings
    """Shore and river-bank points."""
    sampling: SamplingSettings
    """Caps per kind."""
    split: SplitSettings
    """Spatial train/val/test split."""
