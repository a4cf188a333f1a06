"""``EarthEngineSource``: the :class:`~dam_detection.image_sources.base.ImageSource` backed by
Google Earth Engine batch exports.

Planning (``patch_files``, ``scene_export``) only builds graphs and unsubmitted tasks. The lazy
record producers it returns start the tasks, follow them, and read the finished files from the
bucket when a Kedro dataset saves them; the manifest makes a re-run resume instead of restarting.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Literal

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
from dam_detection.image_sources.earthengine import negatives, patches, scenes
from dam_detection.image_sources.earthengine import tasks as ee_tasks
from dam_detection.image_sources.earthengine.composite import CompositeSettings, band_stack
from dam_detection.image_sources.earthengine.download import export_files, read_mixer, read_records

logger = logging.getLogger(__name__)

Destination = Literal["cloud_storage", "drive"]
#: Scene options that override the composite settings for one scene.
SCENE_COMPOSITE_OPTIONS = ("start_date", "end_date", "max_cloud_percent")


class EarthEngineSource:
    """Sentinel-2 patches, scenes and water-edge negatives from Earth Engine.

    Args:
        bucket: Cloud Storage bucket the tasks export to (``destination: cloud_storage``).
        folder: Folder inside the bucket for this project's exports.
        destination: ``cloud_storage`` (read back with fsspec) or ``drive``.
        drive_folder: Drive folder (``destination: drive``); then ``read_url`` must name a local
            folder where Drive syncs the files.
        read_url: fsspec URL of the export root to read finished files from; default
            ``gs://<bucket>`` (needs the ``gcsfs`` package).
        manifest_dir: Folder of the task manifest (one JSON per export).
        composite: :class:`CompositeSettings` fields (collection, dates and cloud limit for
            scenes, ``elevation``); patch exports take their dates from the ``PatchRequest``.
        water_occurrence: :class:`~.negatives.WaterOccurrence` fields.
        scene_crs: CRS of scene exports (``EPSG:4326``, as the patches are sampled in).
        tile_scale: ``tileScale`` of the per-point ``reduceRegion``.
        submit_all: Start every pending task of a plan when its first file is saved, so Earth
            Engine runs them in parallel (else one task at a time).
        tasks: :class:`~.ee_tasks.TaskPolicy` fields (polling, retries, back-off, time-out).
    """

    name = "earthengine"
    #: Export tasks and reads need the Earth Engine session of the process that initialised it.
    runs_in: RunsIn = "this_process"

    def __init__(
        self,
        *,
        bucket: str | None = None,
        folder: str = "dam_detection",
        destination: Destination = "cloud_storage",
        drive_folder: str | None = None,
        read_url: str | None = None,
        manifest_dir: str = "data/02_intermediate/earthengine_tasks",
        composite: Mapping[str, Any] | None = None,
        water_occurrence: Mapping[str, Any] | None = None,
        scene_crs: str = "EPSG:4326",
        tile_scale: float = patches.DEFAULT_TILE_SCALE,
        submit_all: bool = True,
        tasks: Mapping[str, Any] | None = None,
    ) -> None:
        where = "image_source.earthengine"
        if destination == "cloud_storage" and not bucket:
            raise ValueError(f"set {where}.bucket to the Cloud Storage bucket tasks export to")
        if destination == "drive" and not (drive_folder and read_url):
            raise ValueError(
                f"destination drive needs {where}.drive_folder and {where}.read_url (a local "
                "folder where Google Drive syncs that folder)"
            )
        if destination not in ("cloud_storage", "drive"):
            raise ValueError(f"{where}.destination must be cloud_storage or drive")
        self.bucket = bucket
        self.folder = folder.strip("/")
        self.destination = destination
        self.drive_folder = drive_folder
        self.read_url = read_url or f"gs://{bucket}"
        self.manifest_dir = manifest_dir
        self.composite = CompositeSettings.from_config(composite)
        self.water_occurrence = negatives.WaterOccurrence(**(water_occurrence or {}))
        self.scene_crs = scene_crs
        self.tile_scale = tile_scale
        self.submit_all = submit_all
        self.policy = task_policy(tasks)

    def __repr__(self) -> str:
        return f"EarthEngineSource(read_url={self.read_url!r}, folder={self.folder!r})"

    # --- planning ------------------------------------------------------------------------------

    def _job(
        self,
        key: str,
        kind: str,
        make_task: Callable[[str], ee.batch.Task],
        leaf: str | None = None,
    ) -> ee_tasks.ExportJob:
        # The fingerprint is taken from a provisional task, then put into the file prefix so
        # that exports of different requests never share files.
        fingerprint = ee_tasks.request_fingerprint(make_task("provisional"))
        name = f"{key}-{fingerprint[:12]}"
        if self.destination == "drive":  # Drive file names cannot hold folders
            prefix = f"{name}-{leaf}" if leaf else name
        else:
            prefix = f"{self.folder}/{kind}/{name}" + (f"/{leaf}" if leaf else "")
        return ee_tasks.ExportJob(key, make_task(prefix), fingerprint, prefix)

    def _export_options(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "bucket": self.bucket,
            "drive_folder": self.drive_folder,
        }

    def patch_jobs(
        self, points: gpd.GeoDataFrame, request: PatchRequest
    ) -> list[ee_tasks.ExportJob]:
        """One unsubmitted table-export job per chunk of ``request.points_per_file`` points."""
        settings = dataclasses.replace(
            self.composite,
            start_date=request.start_date,
            end_date=request.end_date,
            max_cloud_percent=request.max_cloud_percent,
        )
        array_image = patches.patch_image(band_stack(settings, request.bands), request.radius)
        selectors = patches.table_selectors(request.bands, request.label_key)
        jobs = []
        for number, chunk in enumerate(patches.chunk_points(points, request.points_per_file)):
            stem = f"patches-{number:05d}"
            collection = patches.sample_patches(
                array_image,
                patches.points_collection(chunk, request.label_key),
                request.scale_m,
                self.tile_scale,
            )
            make_task = partial(
                patches.patch_export_task,
                collection,
                description=f"dam_detection_{stem}",
                selectors=selectors,
                **self._export_options(),
            )
            jobs.append(self._job(stem, "patches", partial(_with_prefix, make_task)))
        return jobs

    def scene_job(self, scene: SceneRequest) -> tuple[ee_tasks.ExportJob, scenes.SceneGrid]:
        """The unsubmitted image-export job of a scene and the grid it is exported on."""
        overrides = {k: v for k, v in scene.options.items() if k in SCENE_COMPOSITE_OPTIONS}
        image = band_stack(dataclasses.replace(self.composite, **overrides), scene.bands)
        grid = scenes.scene_grid(scene, self.scene_crs)

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
        """Plan the patch exports; each file's producer runs its task and reads its records."""
        jobs = self.patch_jobs(points, request)
        return {job.key: partial(self._job_records, job, jobs) for job in jobs}

    def scene_export(self, scene: SceneRequest) -> SceneExport:
        """Plan a scene export.

        ``mixer`` is the one the fixed grid implies; ``files`` is a mapping whose names are known
        only once the export finished (Earth Engine splits files at ``maxFileSize``): touching it
        (iterating, ``len``) waits for the task, checks the bucket's mixer against the planned
        one and lists the files.
        """
        job, grid = self.scene_job(scene)
        mixer = scenes.planned_mixer(grid, scene)
        resolve = partial(self._scene_files, job, mixer, scene.file_prefix)
        return SceneExport(mixer=mixer, files=ExportedFiles(resolve), truth=None)

    def water_edge_points(
        self, regions: gpd.GeoDataFrame, sampling: WaterEdgeSampling
    ) -> gpd.GeoDataFrame:
        """Water-edge points per region (one synchronous ``computeFeatures`` request)."""
        collection = negatives.water_edge_samples(regions, sampling, self.water_occurrence)
        return negatives.fetch_points(collection)

    def random_points(
        self, regions: gpd.GeoDataFrame, points_per_region: int, seed: int
    ) -> gpd.GeoDataFrame:
        """Uniform random points per region (``FeatureCollection.randomPoints``)."""
        return negatives.fetch_points(negatives.random_samples(regions, points_per_region, seed))

    # --- running -------------------------------------------------------------------------------

    def run(
        self, job: ee_tasks.ExportJob, siblings: Sequence[ee_tasks.ExportJob] = ()
    ) -> dict[str, Any]:
        """Submit ``job`` (and its siblings when ``submit_all``), then wait until it completed."""
        if self.submit_all:
            for other in siblings:
                try:
                    ee_tasks.submit(other, self.manifest_dir, self.policy)
                except Exception as error:  # noqa: BLE001 - raised again when its own file is saved
                    logger.warning("%s", error)
        return ee_tasks.follow(job, self.manifest_dir, self.policy)

    def _job_records(
        self, job: ee_tasks.ExportJob, siblings: Sequence[ee_tasks.ExportJob]
    ) -> Iterator[bytes]:
        self.run(job, siblings)
        for _, path in export_files(self.read_url, job.file_prefix):
            yield from read_records(self.read_url, path)

    def _scene_files(
        self, job: ee_tasks.ExportJob, mixer: Mapping[str, Any], file_prefix: str
    ) -> dict[str, RecordChunk]:
        self.run(job)
        scenes.check_mixer(
            read_mixer(self.read_url, job.file_prefix), mixer, f"{job.file_prefix}-mixer.json"
        )
        return {
            f"{file_prefix}-{part:05d}.tfrecord.gz": partial(read_records, self.read_url, path)
            for part, path in export_files(self.read_url, job.file_prefix)
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


def task_policy(config: Mapping[str, Any] | None) -> ee_tasks.TaskPolicy:
    """A :class:`~.ee_tasks.TaskPolicy` from the ``tasks`` parameter group."""
    values = dict(config or {})
    unknown = set(values) - {f.name for f in dataclasses.fields(ee_tasks.TaskPolicy)}
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} under image_source.earthengine.tasks; allowed: "
            f"{[f.name for f in dataclasses.fields(ee_tasks.TaskPolicy)]}"
        )
    return ee_tasks.TaskPolicy(**values)


def _with_prefix(make_task: Callable[..., ee.batch.Task], prefix: str) -> ee.batch.Task:
    return make_task(file_prefix=prefix)
