"""Typed settings of ``scan`` (``conf/base/parameters_scan.yml``); see docs/scan.md."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dam_detection.parameters.model import Settings


class RegionSettings(Settings):
    """``scan.region``: the area to scan."""

    name: str = Field(min_length=1)
    """Name of the region in reports and file names."""
    bbox: list[float] | None = Field(min_length=4, max_length=4)
    """``[west, south, east, north]`` in degrees (EPSG:4326); used when ``file`` is null."""
    file: str | None
    """A polygon file (GeoJSON, GeoPackage, shapefile): the union of its polygons is the region."""

    @model_validator(mode="after")
    def _one_of(self) -> RegionSettings:
        if (self.bbox is None) == (self.file is None):
            raise ValueError("scan.region needs exactly one of bbox and file")
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if not (west < east and south < north):
                raise ValueError(f"scan.region.bbox {self.bbox} is not [west, south, east, north]")
        return self


class TileSettings(Settings):
    """``scan.tiles``: how the region is cut into scenes."""

    size_px: int = Field(ge=64)
    """Pixels along a tile's side, without its overlap (2048 px = 20.48 km at 10 m)."""
    overlap_px: int = Field(ge=0)
    """Pixels each tile also predicts beyond each edge, so a dam on a seam is whole in one tile."""
    epsg: int | None
    """Grid of the tiles; ``null``: the UTM zone of the region's centre, at 10 m."""


class ClusterSettings(Settings):
    """``scan.cluster``: where the tiles are segmented."""

    address: str | None
    """Scheduler of an existing Dask cluster (``tcp://host:8786``); ``null``: a LocalCluster."""
    n_workers: int | None = Field(ge=1)
    """LocalCluster workers; ``null``: one per physical core."""
    threads_per_worker: int = Field(ge=1)
    """Threads per LocalCluster worker (TensorFlow's intra-op threads too)."""
    memory_limit: str
    """Memory a LocalCluster worker may use before Dask restarts it (``4GiB``)."""
    retries: int = Field(ge=0)
    """Times a tile is retried when its worker dies."""


class MatchingSettings(Settings):
    """``scan.matching``: when a detection is a dam an inventory already lists."""

    radius_m: dict[str, float]
    """Metres from an inventory point within which a detection is that dam, per ``point_sources``
    entry; ``default`` for any other (inventories differ in precision)."""
    bridge_radius_m: float | None = Field(ge=0)
    """Metres from a listed bridge (``inventory_bridges``) within which a detection that no
    listed dam explains is ``bridge``, not a candidate; ``None``: bridges are not consulted."""
    reservoir_reach_m: float = Field(ge=0)
    """A listed point this close to the water body beside a detection makes it known, however
    far the point is from the wall."""
    water_ndwi: float
    """NDWI above which a pixel is water, for the reservoir rule."""
    confirm_threshold: Literal["validation"] | float | None
    """Lowest peak score that confirms a listed dam: a peak below ``scan.threshold`` within its
    inventory's ``radius_m`` of a listed point not yet matched is that dam (``known``, match
    rule ``confirmed``), never a candidate. ``validation`` takes what ``train`` chose on
    validation patches (dam points against non-dam points); a number; ``null``: listed dams
    need ``scan.threshold`` like any detection."""

    @model_validator(mode="after")
    def _check(self) -> MatchingSettings:
        if isinstance(self.confirm_threshold, float) and not 0 < self.confirm_threshold <= 1:
            raise ValueError(
                f"scan.matching.confirm_threshold {self.confirm_threshold} is not in (0, 1]"
            )
        if "default" not in self.radius_m:
            raise ValueError("scan.matching.radius_m needs a 'default' radius")
        return self


class ChipSettings(Settings):
    """``scan.chips``: the picture of each candidate on the review page."""

    size_px: int = Field(ge=16)
    """Chip side in pixels (96 px = 960 m)."""
    scale: int = Field(ge=1)
    """Each chip pixel drawn this many times across, so small chips stay legible."""


class ScanEvaluationSettings(Settings):
    """``scan.evaluation``: the scan against the planet's truth (simulated sources only)."""

    bootstrap: int = Field(ge=0)
    """Bootstrap resamples behind each 95% interval; 0: no intervals."""
    top_k: list[int] = Field(min_length=1)
    """Reviewer's precision of the first k candidates."""
    calibration_bins: int = Field(ge=2)
    """Score bins of the calibration table."""


class ScanSettings(Settings):
    """``scan``: a region tiled, segmented on Dask, sorted into known dams and candidates."""

    region: RegionSettings
    """The area to scan."""
    tiles: TileSettings
    """Tile grid."""
    cluster: ClusterSettings
    """Dask."""
    block_px: int = Field(ge=32)
    """The FCN predicts blocks of this many pixels a side, plus its receptive field's halo."""
    blocks_per_batch: int = Field(ge=1)
    """Blocks of one shape a worker predicts as one batch (each adds a block's activations to
    its memory)."""
    threshold: Literal["validation"] | float
    """Lowest peak score kept: ``validation`` takes what ``train`` chose on validation patches
    (``train_metrics`` ``fcn.detection``), never tuned on the region; or a number."""
    matching: MatchingSettings
    """Known dam or candidate."""
    chips: ChipSettings
    """Review chips."""
    evaluation: ScanEvaluationSettings
    """Against the truth, when the source has one."""
