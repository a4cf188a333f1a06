"""One patch record from one point: seeding, composing, nuisances, masking, encoding.

Everything here is a top-level function of plain data so that a ``spawn`` worker pool can
run it; nothing here imports TensorFlow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from dam_detection.bands import ELEVATION_BAND, POINT_INDEX_KEY
from dam_detection.image_sources.simulated.bands_out import (
    OPTICAL_GROUP,
    apply_masks,
    render_bands,
    void_stripes,
)
from dam_detection.image_sources.simulated.canvas import Canvas
from dam_detection.image_sources.simulated.noise import smooth_noise
from dam_detection.image_sources.simulated.patch_scenes import KNOWN_KINDS, compose_patch
from dam_detection.image_sources.simulated.spectra import sample_atmosphere
from dam_detection.tfrecord_codec import encode_example

logger = logging.getLogger(__name__)

_KIND_CODES = {"dam": 1, "bridge": 2, "water_edge": 3, "random": 4}


@dataclass(frozen=True)
class Nuisances:
    """Rates of the imperfections real exports have.

    Attributes:
        cloud_rate: Share of images with some cloud (the composite could not remove).
        void_rate: Share of images with an elevation void stripe (kept off the centre).
        missing_band_rate: Share of records whose centre pixel is masked, so that the band
            (the whole Sentinel-2 group, or ``AVE``) is absent from the record.
    """

    cloud_rate: float = 0.15
    void_rate: float = 0.05
    missing_band_rate: float = 0.01


@dataclass(frozen=True)
class PatchTask:
    """Everything needed to render and encode one record (picklable)."""

    point_index: int
    kind: str
    label: float
    lon: float
    lat: float
    seed: int
    radius: int
    bands: tuple[str, ...]
    label_key: str
    month: int
    nuisances: Nuisances
    shore_facing: float | None = None


def patch_rng(seed: int, lon: float, lat: float, kind: str) -> np.random.Generator:
    """The generator of the patch at a location: a pure function of seed, place and kind."""
    ilon = int(round((lon + 360.0) * 1e6))
    ilat = int(round((lat + 180.0) * 1e6))
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, ilon, ilat, _KIND_CODES.get(kind, 0)])


def render_patch(task: PatchTask) -> dict[str, np.ndarray]:
    """The bands of one patch as ``(2r+1, 2r+1)`` float32 arrays; masked bands are left out.

    Returns:
        Band name to image for every band whose centre pixel is valid.
    """
    kind = task.kind
    if task.label >= 0.5 and kind != "dam":
        # Label 1 must always mean a dam at the centre.
        logger.warning("point %d has label 1 but kind %r: drawing a dam", task.point_index, kind)
        kind = "dam"
    if kind not in KNOWN_KINDS:
        logger.warning("point %d has unknown kind %r: drawing random land", task.point_index, kind)
        kind = "random"
    rng = patch_rng(task.seed, task.lon, task.lat, kind)
    size = 2 * task.radius + 1
    canvas, _ = compose_patch(kind, size, rng, task.shore_facing)
    atmosphere = sample_atmosphere(rng, task.month, task.nuisances.cloud_rate)
    images = render_bands(canvas, atmosphere, task.bands, rng)
    centre = (task.radius, task.radius)
    elevation_mask = void_stripes(canvas.shape, rng, task.nuisances.void_rate, centre)
    optical_mask = np.zeros(canvas.shape, bool)
    dropped: tuple[str, ...] = ()
    if rng.random() < task.nuisances.missing_band_rate:
        blob = _blob_over(canvas, centre)
        if ELEVATION_BAND in task.bands and rng.random() < 0.5:
            elevation_mask |= blob
            dropped = (ELEVATION_BAND,)
        else:
            optical_mask |= blob
            dropped = OPTICAL_GROUP
    apply_masks(images, optical_mask, elevation_mask)
    return {band: image for band, image in images.items() if band not in dropped}


def _blob_over(canvas: Canvas, centre: tuple[int, int]) -> np.ndarray:
    """A masked area (cloud mask hole or DSM void) that covers the centre pixel."""
    rows, cols = canvas.shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    radius = canvas.rng.uniform(3, max(rows / 4, 4))
    wobble = smooth_noise(canvas.rng, canvas.shape, 10.0) * np.float32(radius * 0.3)
    blob = np.hypot(x - centre[1], y - centre[0]) + wobble - wobble[centre] < radius
    blob[centre] = True
    return blob


def encode_patch(task: PatchTask) -> bytes:
    """Render one point and serialize its ``tf.train.Example`` (table-export format)."""
    images = render_patch(task)
    features: dict[str, object] = {band: image.ravel() for band, image in images.items()}
    features[task.label_key] = np.array([task.label], np.float32)
    features[POINT_INDEX_KEY] = np.array([task.point_index], np.float32)
    return encode_example(features)
