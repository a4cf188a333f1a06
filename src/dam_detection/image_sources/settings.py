"""``image_source``: which source makes the imagery, and each source's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dam_detection.parameters.model import Settings


class DensitySettings(Settings):
    """``image_source.simulated.density``: structures the planet builds per 100 km²."""

    dams: float = Field(ge=0)
    """Dams across valleys holding reservoirs (concrete and earth walls)."""
    bridges: float = Field(ge=0)
    """Bridges over rivers."""
    lakes: float = Field(ge=0)
    """Natural lakes with outlets (reservoirs without a wall)."""
    levees: float = Field(ge=0)
    """Embankments along a bank (walls along, not across, the water)."""
    towns: float = Field(ge=0)
    """Settlements per 250 x 250 pixels."""
    roads: float = Field(ge=0)
    """Roads crossing each 10 km tile."""
    farm_ponds: float = Field(ge=0)
    """Farm-pond dams: small earth embankments round hillside ponds."""
    weirs: float = Field(ge=0)
    """Low weirs across rivers (dams a pixel or two wide at 10 m)."""
    quarries: float = Field(ge=0)
    """Open pits with benches and often a pit lake (look-alikes)."""
    tailings: float = Field(ge=0)
    """Tailings ponds behind closed embankments (look-alikes)."""


class PositionErrorSettings(Settings):
    """``image_source.simulated.inventories.position_errors``: where listed points lie."""

    sigma_m: float = Field(ge=0)
    """Most points: a 2-D normal offset from the wall with this standard deviation per axis."""
    tail_share: float = Field(ge=0, le=1)
    """Share of points 2.5 sigma to ``tail_max_m`` from the wall."""
    tail_max_m: float = Field(ge=0)
    """Farthest offset of the tail."""
    on_reservoir_share: float = Field(ge=0, le=1)
    """Share of points placed on the reservoir instead of the wall."""


class PlanetInventorySettings(Settings):
    """``image_source.simulated.inventories``: what the planet's published inventories list.

    The planet publishes them for the regions of ``ingest_points.regions``
    (docs/simulated_earth.md, "Inventories").
    """

    publish: bool
    """Publish the inventories (``false``: read only the user's own, with simulated imagery)."""
    listed_share: float = Field(ge=0, le=1)
    """Share of the planet's dams in the national inventory (the rest are unlisted)."""
    duplicate_share: float = Field(ge=0, le=1)
    """Share of listed dams recorded twice, a few tens of metres apart."""
    large_reservoir_km2: float = Field(ge=0)
    """Reservoirs at least this large may be in the GRanD-style file."""
    large_listed_share: float = Field(ge=0, le=1)
    """Share of those the GRanD-style file lists."""
    bridges_listed_share: float = Field(ge=0, le=1)
    """Share of bridges in the NBI file."""
    position_errors: PositionErrorSettings
    """How far listed points lie from the wall."""


class SimulatedEarthSettings(Settings):
    """``image_source.simulated``: the procedural planet (docs/simulated_earth.md)."""

    seed: int | None = None
    """Seed of the planet; ``null``: the shared ``seed``."""
    density: DensitySettings
    """What the planet builds, per 100 km²."""
    inventories: PlanetInventorySettings
    """What the inventories the planet publishes list."""
    cloud_rate: float = Field(ge=0, le=1)
    """Share of the planet's 10 km tiles with cloud left in the composite."""
    void_rate: float = Field(ge=0, le=1)
    """Share of tiles with an elevation void stripe."""
    missing_band_rate: float = Field(ge=0, le=1)
    """Share of the area masked in the composite or the elevation model: a record whose
    centre pixel is masked lacks the band, as Earth Engine drops it."""
    tile_cache: str | None = None
    """Folder where composed tiles are kept between processes and runs (a 1024-pixel tile
    takes 17 MB); ``null`` composes every tile afresh. Never changes a pixel."""
    tile_px: int = Field(ge=128, multiple_of=16)
    """Pixels along a side of the planet's tiles (1024 = 10.24 km holds whole valleys; the test
    environment uses small tiles to stay fast)."""
    workers: int = Field(ge=1)
    """Processes rendering patch files."""


class ElevationSettings(Settings):
    """``image_source.earthengine.composite.elevation``: the source of the elevation band."""

    asset_id: str
    """Earth Engine asset, e.g. ``JAXA/ALOS/AW3D30/V4_1`` (a superseded one logs a warning)."""
    band: str
    """Band holding the surface height (``DSM`` in AW3D30 V3 and V4)."""
    is_collection: bool
    """Mosaic an ImageCollection of tiles into one image."""


class CloudScorePlusSettings(Settings):
    """``image_source.earthengine.composite.cloud_score_plus``: Google's per-pixel clear score."""

    collection_id: str
    """Cloud Score+ collection, linked to each Sentinel-2 image by its ``system:index``."""
    band: Literal["cs", "cs_cdf"]
    """``cs_cdf`` (the score's cumulative distribution, steadier over time) or ``cs``."""
    clear_threshold: float = Field(ge=0, le=1)
    """Pixels scoring at least this are kept (0.5-0.65 is Google's suggested range)."""


class CompositeSettings(Settings):
    """``image_source.earthengine.composite``: how the Sentinel-2 median is made.

    The date window and the cloudy-scene limit are ``gee_export.composite``, shared by patches
    and scenes and by every image source.
    """

    collection_id: str
    """Surface-reflectance ImageCollection."""
    cloud_mask: Literal["cloud_score_plus", "qa60"]
    """``cloud_score_plus`` (any date) or ``qa60`` (the QA60 bits, filled only until January
    2022: later images would come through unmasked or fail with ``Pattern 'QA60' did not
    match``)."""
    cloud_score_plus: CloudScorePlusSettings
    """Cloud Score+ settings (``cloud_mask: cloud_score_plus``)."""
    elevation: ElevationSettings
    """Where the elevation band comes from."""


class WaterOccurrenceSettings(Settings):
    """``image_source.earthengine.water_occurrence``: water occurrence for water-edge negatives."""

    asset_id: str
    """JRC Global Surface Water image."""
    band: str
    """Percentage of observations with water (0-100)."""


class TaskSettings(Settings):
    """``image_source.earthengine.tasks``: how export tasks are followed and retried."""

    poll_interval_s: float = Field(ge=0)
    """Seconds between status requests."""
    max_attempts: int = Field(ge=1)
    """Task starts per export before giving up on transient failures."""
    backoff_initial_s: float = Field(ge=0)
    """First wait after a transient failure; doubles each time."""
    backoff_max_s: float = Field(ge=0)
    """Longest wait between retries."""
    max_active_tasks: int = Field(ge=1, le=3000)
    """Tasks of this project queued or running at once; more wait their turn. Earth Engine
    refuses tasks beyond 3000 queued and runs a few at a time per project."""
    timeout_s: float = Field(gt=0)
    """Stop following a task after this long (a re-run picks it up from the manifest)."""


class ComputePixelsSettings(Settings):
    """``image_source.earthengine.compute_pixels``: the direct path (``transport:
    compute_pixels``).
    """

    max_concurrent_requests: int = Field(ge=1, le=40)
    """Requests in flight at once; Earth Engine's default quota is 40 per project."""


class EarthEngineSettings(Settings):
    """``image_source.earthengine``: exports through earthengine-api (docs/earthengine.md)."""

    transport: Literal["tasks", "compute_pixels"]
    """``tasks``: batch export tasks writing to a bucket or Drive (any size, hours of queue).
    ``compute_pixels``: synchronous requests to the high-volume endpoint, written locally in the
    same formats (patches and small scenes; no bucket, no queue)."""
    compute_pixels: ComputePixelsSettings
    """The direct path's settings."""
    destination: Literal["cloud_storage", "drive"]
    """Where export tasks write."""
    bucket: str | None = None
    """Cloud Storage bucket (required for ``cloud_storage``)."""
    folder: str
    """Folder inside the bucket for this project's exports."""
    drive_folder: str | None = None
    """Drive folder tasks write to (``drive``)."""
    read_url: str | None = None
    """Where finished files are read (fsspec URL); ``null``: ``gs://<bucket>``."""
    manifest_dir: str
    """Task manifest folder, one JSON per export."""
    scene_crs: str
    """Grid of scene exports."""
    patch_crs: str
    """Grid patches are sampled on: every ``reduceRegion`` names it, so no request inherits
    the composite's default projection."""
    tile_scale: float = Field(gt=0)
    """``reduceRegion`` tileScale per point."""
    composite: CompositeSettings
    """The Sentinel-2 composite."""
    water_occurrence: WaterOccurrenceSettings
    """Water occurrence for water-edge negatives."""
    tasks: TaskSettings
    """Task following and retries."""


class ImageSourceSettings(Settings):
    """``image_source``: the source every export asks for pixels."""

    kind: Literal["simulated", "earthengine"]
    """``simulated`` (offline default) or ``earthengine``."""
    simulated: SimulatedEarthSettings
    """Settings of the simulated planet."""
    earthengine: EarthEngineSettings | None = None
    """Settings of Earth Engine; set in ``conf/earthengine`` (``null`` in ``conf/base``)."""
