"""One patch record from one point: the planet sampled on Earth Engine's degree grid.

A table export samples ``neighborhoodToArray`` at each point on the export's grid: with
``patch_crs: EPSG:4326`` at 10 m, pixels are ``10 / 111319.49`` degrees on both axes, aligned to
the grid's origin at 0°, 0°, and the centre pixel is the one containing the point. The patch
is the planet's pixels at those pixel centres (:func:`.world.sample_lonlat_grid`), whatever the
point is: the label comes from the inventory, never from what is drawn.

Everything here is a top-level function of plain data so that a ``spawn`` worker pool can
run it; nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dam_detection.bands import DEGREES_PER_PIXEL, ELEVATION_BAND, POINT_INDEX_KEY
from dam_detection.image_sources.simulated.bands_out import OPTICAL_GROUP
from dam_detection.image_sources.simulated.world import Planet, sample_lonlat_grid
from dam_detection.tfrecord_codec import encode_example


@dataclass(frozen=True)
class PatchTask:
    """Everything needed to render and encode one record (picklable)."""

    point_index: int
    label: float
    lon: float
    lat: float
    radius: int
    bands: tuple[str, ...]
    label_key: str
    month: int
    planet: Planet
    #: ``(epsg, row, column)`` of the tile holding the point: the order files are rendered in.
    tile: tuple[int, int, int] = (0, 0, 0)


def patch_axes(lon: float, lat: float, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre longitudes (west to east) and latitudes (rows from the north) of the patch
    around a point.
    """
    step = DEGREES_PER_PIXEL
    col0, row0 = np.floor(lon / step), np.floor(lat / step)
    offsets = np.arange(-radius, radius + 1)
    return (col0 + offsets + 0.5) * step, (row0 - offsets + 0.5) * step


def patch_grid(lon: float, lat: float, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre longitudes and latitudes of the patch around a point, rows from the north."""
    return np.meshgrid(*patch_axes(lon, lat, radius))


def render_patch(task: PatchTask) -> dict[str, np.ndarray]:
    """The bands of one patch as ``(2r+1, 2r+1)`` float32 arrays; masked bands are left out.

    A band group whose centre pixel is masked (a cloud-mask hole for the Sentinel-2 bands, a
    void for ``AVE``) is absent, as Earth Engine leaves it out of the record.
    """
    lons, lats = patch_axes(task.lon, task.lat, task.radius)
    sample = sample_lonlat_grid(task.planet, task.month, task.bands, lons, lats)
    centre = (task.radius, task.radius)
    dropped: set[str] = set()
    if sample.optical_mask[centre]:
        dropped |= set(OPTICAL_GROUP)
    if sample.elevation_mask[centre]:
        dropped.add(ELEVATION_BAND)
    return {band: image for band, image in sample.bands.items() if band not in dropped}


def encode_patch(task: PatchTask) -> bytes:
    """Render one point and serialize its ``tf.train.Example`` (table-export format)."""
    images = render_patch(task)
    features: dict[str, object] = {band: image.ravel() for band, image in images.items()}
    features[task.label_key] = np.array([task.label], np.float32)
    features[POINT_INDEX_KEY] = np.array([task.point_index], np.float32)
    return encode_example(features)
