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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import geopandas as gpd

from dam_detection.image_sources.base import PatchRequest, RecordChunk
from dam_detection.image_sources.simulated.bands_out import check_bands
from dam_detection.image_sources.simulated.render import PatchTask, encode_patch
from dam_detection.image_sources.simulated.world import Planet, tile_key_of
from dam_detection.workers import die_with_parent, stop_pool

logger = logging.getLogger(__name__)
_POOLS: dict[int, multiprocessing.pool.Pool] = {}


def _pool(workers: int) -> multiprocessing.pool.Pool:
    if workers not in _POOLS:
        context = multiprocessing.get_context("spawn")
        _POOLS[workers] = context.Pool(workers, initializer=die_with_parent)
    return _POOLS[workers]


def pool_map(function: Callable[[Any], Any], jobs: list[Any], workers: int) -> list[Any]:
    """``function`` over ``jobs`` on the shared rendering pool, in order."""
    try:
        return _pool(workers).map(function, jobs, chunksize=1)
    except BaseException:
        close_pools()
        raise


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
        # One job per run of points in the same tile (plan_patch_files orders points by tile):
        # a tile is rendered by the worker that takes its run, and stays in its cache.
        runs: list[list[PatchTask]] = []
        for task in self.tasks:
            if runs and runs[-1][0].tile == task.tile:
                runs[-1].append(task)
            else:
                runs.append([task])
        try:
            for records in _pool(self.workers).imap(_encode_run, runs, chunksize=1):
                yield from records
        except BaseException:
            # Ctrl-C or a failed render: do not leave a pool busy with this file's tasks.
            close_pools()
            raise


def _encode_run(tasks: list[PatchTask]) -> list[bytes]:
    return [encode_patch(task) for task in tasks]


def plan_patch_files(
    points: gpd.GeoDataFrame,
    request: PatchRequest,
    planet: Planet,
    workers: int,
) -> dict[str, RecordChunk]:
    """Split ``points`` into files of ``request.points_per_file`` lazy records.

    Points are ordered by the planet tile that holds them, so that a file's records share
    the few tiles a worker renders and caches.

    Args:
        points: Points with ``point_index``, ``label`` and Point geometry.
        request: The export request (bands, radius, label key, composite window).
        planet: The planet to sample.
        workers: Rendering processes per file.

    Returns:
        ``patches-00000``, ... to their lazy records.
    """
    check_bands(request.bands)
    if abs(request.scale_m - 10.0) > 1e-9:
        logger.warning("the simulated Earth draws at 10 m; scale_m=%s is ignored", request.scale_m)
    missing = [c for c in ("point_index", "label") if c not in points.columns]
    if missing:
        raise ValueError(f"points lack columns {missing}; ingest_points writes them")
    if points.crs is not None and not points.crs.equals("EPSG:4326"):
        points = points.to_crs("EPSG:4326")
    month = request.composite.middle_month
    tasks = [
        PatchTask(
            point_index=int(row.point_index),
            label=float(row.label),
            lon=float(row.geometry.x),
            lat=float(row.geometry.y),
            radius=int(request.radius),
            bands=tuple(request.bands),
            label_key=request.label_key,
            month=month,
            planet=planet,
            tile=_tile_order(planet, float(row.geometry.x), float(row.geometry.y)),
        )
        for row in points.itertuples(index=False)
    ]
    tasks.sort(key=lambda task: task.tile)
    per_file = max(int(request.points_per_file), 1)
    return {
        f"patches-{number:05d}": PatchChunk(tuple(tasks[start : start + per_file]), workers)
        for number, start in enumerate(range(0, len(tasks), per_file))
    }


def _tile_order(planet: Planet, lon: float, lat: float) -> tuple[int, int, int]:
    key = tile_key_of(planet, lon, lat)
    return (key.epsg, key.iy, key.ix)


__all__ = ["PatchChunk", "close_pools", "plan_patch_files"]
