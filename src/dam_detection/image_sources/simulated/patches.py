"""Patch export planning: points to lazy files of records, rendered on a worker pool.

The pool uses the ``spawn`` start method (safe next to TensorFlow and threads in the parent);
workers import only this package's rendering modules and NumPy/SciPy, never TensorFlow. One
pool per worker count is kept for the life of the process so that every file does not pay the
start-up of fresh interpreters.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass

import geopandas as gpd

from dam_detection.image_sources.base import PatchRequest, RecordChunk
from dam_detection.image_sources.simulated.bands_out import check_bands
from dam_detection.image_sources.simulated.render import Nuisances, PatchTask, encode_patch
from dam_detection.image_sources.simulated.water_occurrence import shore_direction
from dam_detection.workers import die_with_parent, stop_pool

logger = logging.getLogger(__name__)
_POOLS: dict[int, multiprocessing.pool.Pool] = {}


def _pool(workers: int) -> multiprocessing.pool.Pool:
    if workers not in _POOLS:
        context = multiprocessing.get_context("spawn")
        _POOLS[workers] = context.Pool(workers, initializer=die_with_parent)
    return _POOLS[workers]


@atexit.register
def close_pools() -> None:
    """Stop the worker pools within seconds (also called at interpreter exit and on Ctrl-C)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        stop_pool(pool)


@dataclass(frozen=True)
class PatchChunk:
    """The records of one patch file, rendered when called (picklable).

    Attributes:
        tasks: One task per point, in file order.
        workers: Processes to render with (1: in this process).
    """

    tasks: tuple[PatchTask, ...]
    workers: int = 2

    def __call__(self) -> Iterator[bytes]:
        """The serialized records of this file, rendered here or in ``workers`` processes."""
        if self.workers <= 1 or len(self.tasks) < 2:
            for task in self.tasks:
                yield encode_patch(task)
            return
        chunksize = max(1, min(8, len(self.tasks) // (4 * self.workers)))
        try:
            yield from _pool(self.workers).imap(encode_patch, self.tasks, chunksize=chunksize)
        except BaseException:
            # Ctrl-C or a failed render: do not leave a pool busy with this file's tasks.
            close_pools()
            raise


def plan_patch_files(
    points: gpd.GeoDataFrame,
    request: PatchRequest,
    world_seed: int,
    nuisances: Nuisances,
    workers: int,
) -> dict[str, RecordChunk]:
    """Split ``points`` into files of ``request.points_per_file`` lazy records.

    Args:
        points: Points with ``point_index``, ``kind``, ``label`` and Point geometry.
        request: The export request (bands, radius, label key, seed, dates).
        world_seed: Seed of the simulated world (mixed with ``request.seed``).
        nuisances: Cloud, void and missing-band rates.
        workers: Rendering processes per file.

    Returns:
        ``patches-00000``, ... to their lazy records, in point order.
    """
    check_bands(request.bands)
    if abs(request.scale_m - 10.0) > 1e-9:
        logger.warning("the simulated Earth draws at 10 m; scale_m=%s is ignored", request.scale_m)
    missing = [c for c in ("point_index", "kind", "label") if c not in points.columns]
    if missing:
        raise ValueError(f"points lack columns {missing}; ingest_points writes them")
    if points.crs is not None and not points.crs.equals("EPSG:4326"):
        points = points.to_crs("EPSG:4326")
    month = request.composite.middle_month
    seed = int(world_seed) * 1_000_003 + int(request.seed)
    tasks = [
        PatchTask(
            point_index=int(row.point_index),
            kind=str(row.kind),
            label=float(row.label),
            lon=float(row.geometry.x),
            lat=float(row.geometry.y),
            seed=seed,
            radius=int(request.radius),
            bands=tuple(request.bands),
            label_key=request.label_key,
            month=month,
            nuisances=nuisances,
            shore_facing=(
                shore_direction(row.geometry.x, row.geometry.y, world_seed)
                if row.kind == "water_edge"
                else None
            ),
        )
        for row in points.itertuples(index=False)
    ]
    per_file = max(int(request.points_per_file), 1)
    return {
        f"patches-{number:05d}": PatchChunk(tuple(tasks[start : start + per_file]), workers)
        for number, start in enumerate(range(0, len(tasks), per_file))
    }


__all__ = ["PatchChunk", "close_pools", "plan_patch_files"]
