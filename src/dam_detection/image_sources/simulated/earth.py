"""``SimulatedEarth``: the offline image source, a stand-in for Earth Engine."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd

from dam_detection.datasets.export_plan import RunsIn
from dam_detection.image_sources.base import (
    PatchRequest,
    RecordChunk,
    SceneExport,
    SceneRequest,
    WaterEdgeSampling,
)
from dam_detection.image_sources.simulated import patches, scene_export, water_occurrence
from dam_detection.image_sources.simulated.render import Nuisances


@dataclass
class SimulatedEarth:
    """A procedural Sentinel-2-like Earth that writes exactly the files Earth Engine writes.

    It lets the product run offline and lets tests know the ground truth. It is a stand-in
    for Earth Engine, never a replacement for real data.

    Args:
        seed: World seed: where water is, and (mixed with each request's seed) every pixel.
        workers: Processes that render patch files (1 renders in the calling process).
        cloud_rate: Share of patches with some cloud left in the composite.
        void_rate: Share of patches with an elevation void stripe off the centre.
        missing_band_rate: Share of records whose centre pixel is masked, so that a band
            (the Sentinel-2 group or ``AVE``) is absent from the record.
    """

    seed: int = 42
    workers: int = 2
    cloud_rate: float = 0.15
    void_rate: float = 0.05
    missing_band_rate: float = 0.01
    name: str = "simulated"
    #: Rendering is a pure function of the request: producers may run in worker processes.
    runs_in: RunsIn = "any_process"

    def __post_init__(self) -> None:
        for rate in ("cloud_rate", "void_rate", "missing_band_rate"):
            if not 0.0 <= getattr(self, rate) <= 1.0:
                raise ValueError(f"{rate} must be within [0, 1], got {getattr(self, rate)}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @property
    def nuisances(self) -> Nuisances:
        """The configured nuisance rates."""
        return Nuisances(self.cloud_rate, self.void_rate, self.missing_band_rate)

    def patch_files(
        self, points: gpd.GeoDataFrame, request: PatchRequest
    ) -> dict[str, RecordChunk]:
        """Plan patch files; see :func:`.patches.plan_patch_files`."""
        return patches.plan_patch_files(points, request, self.seed, self.nuisances, self.workers)

    def scene_export(self, scene: SceneRequest) -> SceneExport:
        """Plan a scene export; see :func:`.scene_export.plan_scene_export`."""
        return scene_export.plan_scene_export(scene, self.seed)

    def water_edge_points(
        self, regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling
    ) -> gpd.GeoDataFrame:
        """Sample water edges; see :func:`.water_occurrence.water_edge_points`."""
        return water_occurrence.water_edge_points(regions, sampling, self.seed)
