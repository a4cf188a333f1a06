"""The image-source interface: what ``gee_export`` and ``ingest_points`` ask of an image source.

Two sources implement it: :mod:`dam_detection.image_sources.simulated` (the offline default, a
procedural Earth) and :mod:`dam_detection.image_sources.earthengine` (Google Earth Engine). Both
hand back *lazy* record producers: nothing is rendered, requested or downloaded until a Kedro
dataset's ``save`` calls them, so nodes stay pure and a re-run can skip files that already exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import geopandas as gpd

from dam_detection.bands import DEFAULT_BANDS, DEFAULT_PATCH_RADIUS, LABEL_KEY, PIXEL_SIZE_M
from dam_detection.datasets.export_plan import RunsIn

if TYPE_CHECKING:
    from dam_detection.image_sources.settings import ImageSourceSettings

#: Produces the serialized ``tf.train.Example`` records of one output file, when called.
RecordChunk = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class CompositeWindow:
    """Which images a composite takes: one window for every patch and scene of a run.

    Attributes:
        start_date: First day, ISO format.
        end_date: Day after the last day, ISO format.
        max_cloud_percent: Images with ``CLOUDY_PIXEL_PERCENTAGE`` at or above this are left out.
    """

    start_date: str
    end_date: str
    max_cloud_percent: float

    def __post_init__(self) -> None:
        start, end = dt.date.fromisoformat(self.start_date), dt.date.fromisoformat(self.end_date)
        if start >= end:
            raise ValueError(f"composite start_date {start} is not before end_date {end}")

    @property
    def middle_month(self) -> int:
        """Month (1-12) of the middle of the window, which sets the season."""
        start, end = dt.date.fromisoformat(self.start_date), dt.date.fromisoformat(self.end_date)
        return (start + (end - start) / 2).month


@dataclass(frozen=True, kw_only=True)
class PatchRequest:
    """What to export around every point (Earth Engine's table-export format).

    Attributes:
        composite: The images composited (dates, cloudy-image limit).
        bands: Band names, in output order.
        radius: Kernel radius in pixels; each band holds ``(2 * radius + 1) ** 2`` values.
        scale_m: Pixel size in metres.
        label_key: Name of the label feature (float 1.0 dam, 0.0 not a dam).
        points_per_file: Records per output file (bounds file size and task size).
        seed: Seed for anything random in the source.
    """

    composite: CompositeWindow
    bands: tuple[str, ...] = DEFAULT_BANDS
    radius: int = DEFAULT_PATCH_RADIUS
    scale_m: float = PIXEL_SIZE_M
    label_key: str = LABEL_KEY
    points_per_file: int = 200
    seed: int = 42


@dataclass(frozen=True, kw_only=True)
class SceneRequest:
    """One large region to export in Earth Engine's image-export format.

    Attributes:
        name: Scene name, also its folder name under ``scenes/``.
        center_lon: Longitude of the scene centre, degrees.
        center_lat: Latitude of the scene centre, degrees.
        composite: The images composited (the same window as the patches').
        width_px: Scene width in pixels (border tiles that do not fit a patch are dropped).
        height_px: Scene height in pixels.
        bands: Band names, in output order.
        scale_m: Pixel size in metres.
        patch_dimensions: Unbuffered patch ``[w, h]`` in pixels (``patchDimensions``).
        kernel_size: Overlap buffer ``[kx, ky]`` (``kernelSize``); each patch carries
            ``kx / 2`` extra pixels left and right, ``ky / 2`` above and below.
        file_prefix: Prefix of the ``-00000.tfrecord.gz`` files and of ``-mixer.json``.
        max_file_size_bytes: Earth Engine's ``maxFileSize``: records roll over to a new file.
        seed: Seed for anything random in the source.
        options: Source-specific extras (e.g. the number of dams in a simulated scene).
    """

    name: str
    center_lon: float
    center_lat: float
    composite: CompositeWindow
    width_px: int = 2048
    height_px: int = 2048
    bands: tuple[str, ...] = DEFAULT_BANDS
    scale_m: float = PIXEL_SIZE_M
    patch_dimensions: tuple[int, int] = (256, 256)
    kernel_size: tuple[int, int] = (128, 128)
    file_prefix: str = "scene"
    max_file_size_bytes: int = 104_857_600
    seed: int = 42
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class SceneExport:
    """A scene as Earth Engine's ``Export.image`` leaves it, plus what the source knows of it.

    Attributes:
        mixer: The ``<prefix>-mixer.json`` content.
        files: File name (``<prefix>-00000.tfrecord.gz``, ...) to its lazy records, in name order.
        truth: Ground truth when the source knows it (simulated scenes): dam wall centres as
            points and reservoir outlines as polygons, EPSG:4326, with columns ``kind``
            (``dam_wall`` or ``reservoir``) and ``dam_id``. ``None`` for real imagery.
    """

    mixer: dict[str, Any]
    files: Mapping[str, RecordChunk]
    truth: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class WaterEdgeSampling:
    """The seed study's water-edge sampler (Canny on water occurrence, strong edges removed).

    Attributes:
        canny_threshold: Canny threshold on occurrence (0-100).
        canny_sigma: Gaussian sigma of the Canny detector, pixels.
        max_edge_strength: Edges at or above this strength are masked out (lake-in-desert
            artefacts, image borders).
        scale_m: Sampling scale in metres.
        factor: Fraction of edge pixels kept.
        seed: Sampling seed.
        max_points_per_region: Cap per region, ``None`` for no cap.
    """

    canny_threshold: float = 60.0
    canny_sigma: float = 1.0
    max_edge_strength: float = 220.0
    scale_m: float = 100.0
    factor: float = 0.05
    seed: int = 42
    max_points_per_region: int | None = None


@runtime_checkable
class ImageSource(Protocol):
    """Where imagery comes from. Implementations: simulated (default) and earthengine."""

    name: str
    #: Where the record producers it hands out may run: ``any_process`` (picklable, pure) or
    #: ``this_process`` (they need state of the process that built them, such as an
    #: initialised Earth Engine session).
    runs_in: RunsIn

    def patch_files(
        self, points: gpd.GeoDataFrame, request: PatchRequest
    ) -> dict[str, RecordChunk]:
        """Plan the patch export of ``points``.

        Args:
            points: Points table rows (``point_index``, ``kind``, ``label``, ``geometry`` in
                EPSG:4326).
            request: What to export.

        Returns:
            Output file stem (``patches-00000``, ...) to its lazy records: one Example per point
            with a float_list per band, the label as one float under ``request.label_key`` and
            ``point_index`` as one float. A band may be absent where the centre pixel is masked.
        """
        ...

    def scene_export(self, scene: SceneRequest) -> SceneExport:
        """Plan the image export of one scene (lazy files plus mixer and, if known, truth)."""
        ...

    def water_edge_points(
        self, regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling
    ) -> gpd.GeoDataFrame:
        """Sample water-edge points inside ``regions`` (polygons with a ``name`` column).

        Returns:
            Points in EPSG:4326 with a ``region`` column naming the region each came from.
        """
        ...


SourceKind = Literal["simulated", "earthengine"]


def make_image_source(settings: ImageSourceSettings, seed: int) -> ImageSource:
    """Build the image source that ``params:image_source`` names.

    Args:
        settings: ``params:image_source``.
        seed: ``params:seed``: the simulated planet's seed unless it sets its own.

    Returns:
        The configured source. Building it does no I/O; Earth Engine is initialised by the
        project's hook before any node runs.

    Raises:
        ValueError: If the chosen source has no settings.
    """
    if settings.kind == "simulated":
        from dam_detection.image_sources.simulated import SimulatedEarth

        simulated = settings.simulated.model_dump()
        simulated["seed"] = seed if settings.simulated.seed is None else settings.simulated.seed
        return SimulatedEarth(**simulated)
    if settings.earthengine is None:
        raise ValueError(
            "image_source.kind is earthengine but image_source.earthengine is not set: run with "
            "--env earthengine (conf/earthengine/parameters.yml) or set it in your environment"
        )
    from dam_detection.image_sources.earthengine import EarthEngineSource

    return EarthEngineSource(settings.earthengine)
