"""``EarthEngineSource``: the :class:`~dam_detection.image_sources.base.ImageSource` backed by
Google Earth Engine batch exports.

Planning (``patch_files``, ``scene_export``) only builds graphs and unsubmitted jobs, registered
with the source's :class:`~.queue.ExportQueue`. The lazy record producers it returns drive the
queue until their job is done and read the finished files from the bucket when a Kedro dataset
saves them; the manifest makes a re-run resume instead of restarting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import ee
import geopandas as gpd

from dam_detection.datasets.export_plan import RunsIn
from dam_detection.image_sources.base import (
    PatchRequest,
    RecordChunk,
    SceneExport,
    SceneRequest,
    WaterEdgeSampling,
)
from dam_detection.image_sources.earthengine import direct, negatives, patches, scenes
from dam_detection.image_sources.earthengine import tasks as ee_tasks
from dam_detection.image_sources.earthengine.assets import warn_if_superseded
from dam_detection.image_sources.earthengine.composite import band_stack
from dam_detection.image_sources.earthengine.direct import PixelFetcher
from dam_detection.image_sources.earthengine.download import (
    FolderListing,
    read_mixer,
    read_records,
)
from dam_detection.image_sources.earthengine.queue import ExportQueue
from dam_detection.image_sources.earthengine.session import (
    initialized_project,
    uses_service_account,
)
from dam_detection.image_sources.settings import EarthEngineSettings

logger = logging.getLogger(__name__)


class EarthEngineSource:
    """Sentinel-2 patches, scenes and water-edge negatives from Earth Engine.

    Args:
        settings: ``image_source.earthengine`` (destination, composite, tasks and the rest).
        project: Cloud project the tasks run in, part of every export's fingerprint; default:
            the project this process initialised Earth Engine for.
        service_account: Whether Earth Engine runs as a service account; default: as this
            process initialised it.
        sleep: Waits of the export queue (injected by tests and the scale benchmark).
        clock: Monotonic clock of the export queue.

    Raises:
        ValueError: If the destination lacks its bucket or folder, or a service account would
            export to Drive.
    """

    name = "earthengine"
    #: Export tasks and reads need the Earth Engine session of the process that initialised it.
    runs_in: RunsIn = "this_process"

    def __init__(
        self,
        settings: EarthEngineSettings,
        *,
        project: str | None = None,
        service_account: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        where = "image_source.earthengine"
        tasks = settings.transport == "tasks"  # the direct path needs no bucket or Drive
        if tasks and settings.destination == "cloud_storage" and not settings.bucket:
            raise ValueError(
                f"set {where}.bucket to the Cloud Storage bucket tasks export to (or "
                f"{where}.transport: compute_pixels for patches and small scenes)"
            )
        if tasks and settings.destination == "drive":
            if not (settings.drive_folder and settings.read_url):
                raise ValueError(
                    f"destination drive needs {where}.drive_folder and {where}.read_url (a local "
                    "folder where Google Drive syncs that folder)"
                )
            if service_account if service_account is not None else uses_service_account():
                raise ValueError(
                    f"{where}.destination is drive, but Earth Engine runs as a service account: "
                    "its exports would land in the service account's own Drive, which no person "
                    "sees. Export to Cloud Storage (destination: cloud_storage, bucket: ...) or "
                    "drop service_account_key from conf/local/credentials.yml"
                )
        self.settings = settings
        self.folder = settings.folder.strip("/")
        self.read_url = settings.read_url or f"gs://{settings.bucket}"
        self.project = project or initialized_project()
        self.queue = ExportQueue(settings.manifest_dir, settings.tasks, sleep=sleep, clock=clock)
        self.listing = FolderListing(self.read_url)
        self.fetcher = PixelFetcher(
            settings.compute_pixels.max_concurrent_requests, settings.tasks, sleep
        )
        composite = settings.composite
        warn_if_superseded(composite.collection_id, f"{where}.composite.collection_id")
        warn_if_superseded(composite.elevation.asset_id, f"{where}.composite.elevation.asset_id")
        warn_if_superseded(settings.water_occurrence.asset_id, f"{where}.water_occurrence.asset_id")

    def __repr__(self) -> str:
        return f"EarthEngineSource(read_url={self.read_url!r}, folder={self.folder!r})"

    # --- planning ------------------------------------------------------------------------------

    def _destination(self) -> dict[str, Any]:
        # Everything that decides where files land: part of each export's fingerprint.
        return {
            "destination": self.settings.destination,
            "bucket": self.settings.bucket,
            "drive_folder": self.settings.drive_folder,
            "folder": self.folder,
            "project": self.project,
        }

    def _job(
        self,
        key: str,
        kind: str,
        make_task: Callable[[str], ee.batch.Task],
        leaf: str | None = None,
        split: Callable[[], tuple[ee_tasks.ExportJob, ee_tasks.ExportJob]] | None = None,
    ) -> ee_tasks.ExportJob:
        # The fingerprint is taken from a provisional task, then put into the file prefix so
        # that exports of different requests never share files.
        fingerprint = ee_tasks.request_fingerprint(make_task("provisional"), self._destination())
        name = f"{key}-{fingerprint[:12]}"
        if self.settings.destination == "drive":  # Drive file names cannot hold folders
            prefix = f"{name}-{leaf}" if leaf else name
        else:
            prefix = f"{self.folder}/{kind}/{name}" + (f"/{leaf}" if leaf else "")
        return ee_tasks.ExportJob(key, make_task(prefix), fingerprint, prefix, split)

    def _export_options(self) -> dict[str, Any]:
        return {
            "destination": self.settings.destination,
            "bucket": self.settings.bucket,
            "drive_folder": self.settings.drive_folder,
        }

    def patch_jobs(
        self, points: gpd.GeoDataFrame, request: PatchRequest
    ) -> list[ee_tasks.ExportJob]:
        """One unsubmitted table-export job per chunk of ``request.points_per_file`` points."""
        return [
            self._patch_job(f"patches-{number:05d}", chunk, request)
            for number, chunk in enumerate(patches.chunk_points(points, request.points_per_file))
        ]

    def _patch_job(
        self, key: str, chunk: gpd.GeoDataFrame, request: PatchRequest
    ) -> ee_tasks.ExportJob:
        features = patches.points_collection(chunk, request.label_key)
        # filterBounds: only the images over this chunk's points enter its composite.
        image = band_stack(self.settings.composite, request.composite, request.bands, features)
        collection = patches.sample_patches(
            patches.patch_image(image, request.radius),
            features,
            request.scale_m,
            self.settings.patch_crs,
            self.settings.tile_scale,
        )
        make_task = partial(
            patches.patch_export_task,
            collection,
            description=f"dam_detection_{key.replace('.', '_')}",
            selectors=patches.table_selectors(request.bands, request.label_key),
            **self._export_options(),
        )
        split = partial(self._split_patch_job, key, chunk, request) if len(chunk) > 1 else None
        return self._job(key, "patches", partial(_with_prefix, make_task), split=split)

    def _split_patch_job(
        self, key: str, chunk: gpd.GeoDataFrame, request: PatchRequest
    ) -> tuple[ee_tasks.ExportJob, ee_tasks.ExportJob]:
        middle = len(chunk) // 2
        return (
            self._patch_job(f"{key}.1", chunk.iloc[:middle], request),
            self._patch_job(f"{key}.2", chunk.iloc[middle:], request),
        )

    def scene_job(
        self, scene: SceneRequest, grid: scenes.SceneGrid | None = None
    ) -> tuple[ee_tasks.ExportJob, scenes.SceneGrid]:
        """The unsubmitted image-export job of a scene and the grid it is exported on (by
        default centred on the scene in ``scene_crs``; a region scan gives its own grid).
        """
        grid = grid or scenes.scene_grid(scene, self.settings.scene_crs)
        image = band_stack(
            self.settings.composite, scene.composite, scene.bands, scenes.grid_footprint(grid)
        )

        def make_task(prefix: str) -> ee.batch.Task:
            return scenes.scene_export_task(
                image,
                grid,
                scene,
                description=f"dam_detection_scene_{scene.name}",
                file_prefix=prefix,
                **self._export_options(),
            )

        job = self._job(f"scene-{scene.name}", "scenes", make_task, leaf=scene.file_prefix)
        return job, grid

    # --- the ImageSource protocol --------------------------------------------------------------

    def patch_files(
        self, points: gpd.GeoDataFrame, request: PatchRequest
    ) -> dict[str, RecordChunk]:
        """Plan the patch exports; each file's producer runs the queue until its task is done,
        then reads its records (from every part, if Earth Engine made it split). With
        ``transport: compute_pixels`` each producer requests its patches directly instead.
        """
        if self.settings.transport == "compute_pixels":
            return {
                f"patches-{number:05d}": partial(self._direct_patches, chunk, request)
                for number, chunk in enumerate(
                    patches.chunk_points(points, request.points_per_file)
                )
            }
        jobs = self.patch_jobs(points, request)
        for job in jobs:
            self.queue.add(job)
        return {job.key: partial(self._job_records, job.key) for job in jobs}

    def scene_export(self, scene: SceneRequest) -> SceneExport:
        """Plan a scene export on the grid centred on the scene; see :meth:`grid_export`."""
        return self.grid_export(scene, scenes.scene_grid(scene, self.settings.scene_crs))

    def grid_export(self, scene: SceneRequest, grid: scenes.SceneGrid) -> SceneExport:
        """Plan the image export of ``scene``'s bands on an explicit grid (a scan tile's window
        on its UTM grid, for example).

        ``mixer`` is the one the fixed grid implies; ``files`` is a mapping whose names are known
        only once the export finished (Earth Engine splits files at ``maxFileSize``): touching it
        (iterating, ``len``) waits for the task, checks the bucket's mixer against the planned
        one and lists the files. Every planned scene joins the same queue, so scenes export in
        parallel within ``max_active_tasks``. With ``transport: compute_pixels`` the files are
        known at once and each requests its tiles directly.
        """
        if self.settings.transport == "compute_pixels":
            return self._direct_scene(scene, grid)
        job, grid = self.scene_job(scene, grid)
        self.queue.add(job)
        mixer = scenes.planned_mixer(grid, scene)
        resolve = partial(self._scene_files, job.key, mixer, scene.file_prefix)
        return SceneExport(mixer=mixer, files=ExportedFiles(resolve), truth=None)

    def water_edge_points(
        self, regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling
    ) -> gpd.GeoDataFrame:
        """Water-edge points per region (synchronous ``computeFeatures`` requests)."""
        collection = negatives.water_edge_samples(regions, sampling, self.settings.water_occurrence)
        return negatives.fetch_points(collection, self.settings.tasks)

    def random_points(
        self, regions: gpd.GeoDataFrame, points_per_region: int, seed: int
    ) -> gpd.GeoDataFrame:
        """Uniform random points per region (``FeatureCollection.randomPoints``)."""
        collection = negatives.random_samples(regions, points_per_region, seed)
        return negatives.fetch_points(collection, self.settings.tasks)

    # --- the direct path -----------------------------------------------------------------------

    def _direct_patches(self, chunk: gpd.GeoDataFrame, request: PatchRequest) -> Iterator[bytes]:
        features = patches.points_collection(chunk, request.label_key)
        image = band_stack(self.settings.composite, request.composite, request.bands, features)
        yield from direct.patch_records(
            self.fetcher,
            image,
            chunk,
            bands=request.bands,
            radius=request.radius,
            scale_m=request.scale_m,
            crs=self.settings.patch_crs,
            label_key=request.label_key,
        )

    def _direct_scene(self, scene: SceneRequest, grid: scenes.SceneGrid) -> SceneExport:
        image = band_stack(
            self.settings.composite, scene.composite, scene.bands, scenes.grid_footprint(grid)
        )
        tiles = direct.scene_tile_grids(grid, scene.patch_dimensions, scene.kernel_size)
        # As an image export does: a new file whenever the next record would pass maxFileSize.
        record_bytes = 4 * len(scene.bands) * tiles[0].width_px * tiles[0].height_px + 64
        per_file = max(1, scene.max_file_size_bytes // record_bytes)
        files: dict[str, RecordChunk] = {
            f"{scene.file_prefix}-{part:05d}.tfrecord.gz": partial(
                direct.tile_records,
                self.fetcher,
                image,
                tiles[start : start + per_file],
                scene.bands,
            )
            for part, start in enumerate(range(0, len(tiles), per_file))
        }
        return SceneExport(mixer=scenes.planned_mixer(grid, scene), files=files, truth=None)

    # --- running -------------------------------------------------------------------------------

    def _job_records(self, key: str) -> Iterator[bytes]:
        for entry in self.queue.wait(key):
            for _, path in self.listing.export_files(entry["file_prefix"], self.queue.completions):
                yield from read_records(self.read_url, path)

    def _scene_files(
        self, key: str, mixer: Mapping[str, Any], file_prefix: str
    ) -> dict[str, RecordChunk]:
        (entry,) = self.queue.wait(key)
        prefix = entry["file_prefix"]
        scenes.check_mixer(read_mixer(self.read_url, prefix), mixer, f"{prefix}-mixer.json")
        return {
            f"{file_prefix}-{part:05d}.tfrecord.gz": partial(read_records, self.read_url, path)
            for part, path in self.listing.export_files(prefix, self.queue.completions)
        }


class ExportedFiles(Mapping[str, RecordChunk]):
    """File name to lazy records, resolved (the export run and listed) on first use."""

    def __init__(self, resolve: Callable[[], Mapping[str, RecordChunk]]) -> None:
        self._resolve = resolve
        self._files: dict[str, RecordChunk] | None = None

    def _loaded(self) -> dict[str, RecordChunk]:
        if self._files is None:
            self._files = dict(sorted(self._resolve().items()))
        return self._files

    def __getitem__(self, name: str) -> RecordChunk:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        state = "pending export" if self._files is None else f"{len(self._files)} files"
        return f"ExportedFiles({state})"


def _with_prefix(make_task: Callable[..., ee.batch.Task], prefix: str) -> ee.batch.Task:
    return make_task(file_prefix=prefix)
