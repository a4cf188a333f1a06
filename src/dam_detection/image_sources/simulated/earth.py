"""``SimulatedEarth``: the offline image source, a stand-in for Earth Engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import shapely

from dam_detection.datasets.export_plan import RunsIn
from dam_detection.image_sources.base import (
    CompositeWindow,
    PatchRequest,
    RecordChunk,
    SceneExport,
    SceneRequest,
    WaterEdgeSampling,
)
from dam_detection.image_sources.simulated import patches, scene_export, water_occurrence
from dam_detection.image_sources.simulated.publish import (
    InventoryRules,
    PositionErrors,
    Publication,
    publish,
)
from dam_detection.image_sources.simulated.region import PlanetBlockReader
from dam_detection.image_sources.simulated.world import Density, Planet


@dataclass
class SimulatedEarth:
    """A procedural Sentinel-2-like Earth that writes exactly the files Earth Engine writes.

    It lets the product run offline and lets tests know the ground truth. It is a stand-in
    for Earth Engine, never a replacement for real data. Patches, scenes and water edges are
    all read from one planet (:mod:`.world`), so they agree wherever they overlap.

    Args:
        seed: World seed: every pixel and every structure.
        workers: Processes that render patch files (1 renders in the calling process).
        density: Structures per 100 km² (fields of :class:`.world.Density`).
        cloud_rate: Share of 10 km tiles with some cloud left in the composite.
        void_rate: Share of tiles with an elevation void stripe.
        missing_band_rate: Share of the area masked in the composite or the elevation model;
            a record whose centre pixel is masked lacks that band.
        tile_px: Pixels along a side of the planet's tiles (see :class:`.world.Planet`).
        tile_cache: Folder where composed tiles are kept (:mod:`.tile_cache`), or ``None``.
    """

    seed: int = 42
    workers: int = 2
    density: Mapping[str, Any] | Density = field(default_factory=Density)
    cloud_rate: float = 0.15
    void_rate: float = 0.05
    missing_band_rate: float = 0.01
    tile_px: int = 1024
    tile_cache: str | None = None
    #: Reader of the planet's published inventories (``publish.InventoryRules`` fields but
    #: the regions); only ``publish_inventories`` uses it.
    inventories: Mapping[str, Any] | None = None
    name: str = "simulated"
    #: Rendering is a pure function of the request: producers may run in worker processes.
    runs_in: RunsIn = "any_process"

    def __post_init__(self) -> None:
        for rate in ("cloud_rate", "void_rate", "missing_band_rate"):
            if not 0.0 <= getattr(self, rate) <= 1.0:
                raise ValueError(f"{rate} must be within [0, 1], got {getattr(self, rate)}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

        if not isinstance(self.density, Density):
            self.density = Density(**dict(self.density))

    @property
    def planet(self) -> Planet:
        """The planet every export of this source samples."""
        assert isinstance(self.density, Density)  # __post_init__ converts a mapping
        return Planet(
            seed=int(self.seed),
            density=self.density,
            cloud_rate=self.cloud_rate,
            void_rate=self.void_rate,
            missing_band_rate=self.missing_band_rate,
            tile_px=self.tile_px,
            cache_dir=self.tile_cache,
        )

    def patch_files(
        self, points: gpd.GeoDataFrame, request: PatchRequest
    ) -> dict[str, RecordChunk]:
        """Plan patch files; see :func:`.patches.plan_patch_files`."""
        return patches.plan_patch_files(points, request, self.planet, self.workers)

    def scene_export(self, scene: SceneRequest) -> SceneExport:
        """Plan a scene export; see :func:`.scene_export.plan_scene_export`."""
        return scene_export.plan_scene_export(scene, self.planet)

    def block_reader(self, composite: CompositeWindow, bands: Sequence[str]) -> PlanetBlockReader:
        """Reads blocks of the planet's grid for region scans; see :mod:`.region`."""
        return PlanetBlockReader(self.planet, composite.middle_month, tuple(bands))

    def publish_inventories(self, regions: gpd.GeoDataFrame, first_serial: int = 0) -> Publication:
        """The planet's inventories of the regions; see :func:`.publish.publish`."""
        options = dict(self.inventories or {})
        options.pop("publish", None)  # whether to publish is the pipeline's decision
        errors = PositionErrors(**dict(options.pop("position_errors", {})))
        area = shapely.union_all(regions.to_crs("EPSG:4326").geometry.to_numpy())
        rules = InventoryRules(**options, errors=errors)
        return publish(self.planet, area, rules, self.workers, first_serial)

    def water_edge_points(
        self, regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling
    ) -> gpd.GeoDataFrame:
        """Sample water edges; see :func:`.water_occurrence.water_edge_points`."""
        return water_occurrence.water_edge_points(regions, sampling, self.planet)
