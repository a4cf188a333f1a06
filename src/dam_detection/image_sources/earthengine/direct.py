"""The direct path: pixels from ``ee.data.computePixels``, written in the export formats.

No bucket, no task queue: each patch (or scene tile) is one synchronous request to Earth
Engine's high-volume endpoint, run in parallel by a bounded pool of threads (Earth Engine's
default quota is 40 concurrent requests per project) and retried with back-off on HTTP 429 and
other transient errors. The answers are written as the batch exports would have written them:
patches as table-export records (a ``float_list`` of ``(2r+1)^2`` values per band, the band
absent where its centre pixel is masked, the label and ``point_index``), scenes as image-export
records of buffered tiles with the planned mixer. The rest of the product cannot tell them apart.

Patches are requested on the grid ``reduceRegion`` samples: the CRS's lattice at ``scale_m``
anchored at its origin, so a patch's centre pixel is the one that contains the point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import ee
import geopandas as gpd
import numpy as np

from dam_detection.bands import POINT_INDEX_KEY
from dam_detection.image_sources.earthengine.scenes import METRES_PER_DEGREE, SceneGrid
from dam_detection.image_sources.earthengine.tasks import with_retries
from dam_detection.image_sources.settings import TaskSettings
from dam_detection.tfrecord_codec import encode_example

#: Suffix of the mask band requested next to each value band.
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class PixelGrid:
    """The grid of one request: ``crsCode``, ``affineTransform`` and ``dimensions``."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width_px: int
    height_px: int

    def request(self) -> dict[str, Any]:
        """The ``grid`` field of a ``computePixels`` request."""
        scale_x, shear_x, x0, shear_y, scale_y, y0 = self.transform
        return {
            "dimensions": {"width": self.width_px, "height": self.height_px},
            "affineTransform": {
                "scaleX": scale_x,
                "shearX": shear_x,
                "translateX": x0,
                "shearY": shear_y,
                "scaleY": scale_y,
                "translateY": y0,
            },  # fmt: skip
            "crsCode": self.crs,
        }


def pixel_size(crs: str, scale_m: float) -> float:
    """Pixel size in the CRS's units: degrees the way Earth Engine converts them, or metres."""
    from pyproj import CRS

    return scale_m / METRES_PER_DEGREE if CRS.from_user_input(crs).is_geographic else scale_m


def patch_grid(x: float, y: float, radius: int, scale_m: float, crs: str) -> PixelGrid:
    """The ``(2r+1)``-square grid centred on the lattice pixel that contains ``(x, y)``.

    Args:
        x: Point's x in ``crs`` (longitude for EPSG:4326).
        y: Point's y in ``crs``.
        radius: Patch radius in pixels.
        scale_m: Pixel size in metres.
        crs: The grid's CRS.
    """
    pixel = pixel_size(crs, scale_m)
    column, row = math.floor(x / pixel), math.floor(y / pixel)
    side = 2 * radius + 1
    transform = (pixel, 0.0, (column - radius) * pixel, 0.0, -pixel, (row + 1 + radius) * pixel)
    return PixelGrid(crs, transform, side, side)


def scene_tile_grids(
    grid: SceneGrid, patch: tuple[int, int], kernel: tuple[int, int]
) -> list[PixelGrid]:
    """The buffered tile of every patch of a scene, in the export's order (rows, north first)."""
    (width, height), (kernel_x, kernel_y) = patch, kernel
    scale_x, _, x0, _, scale_y, y0 = grid.transform
    rows = grid.total_patches // grid.patches_per_row
    tiles = []
    for row in range(rows):
        for column in range(grid.patches_per_row):
            origin_x = x0 + (column * width - kernel_x // 2) * scale_x
            origin_y = y0 + (row * height - kernel_y // 2) * scale_y
            tiles.append(
                PixelGrid(
                    grid.crs,
                    (scale_x, 0.0, origin_x, 0.0, scale_y, origin_y),
                    width + kernel_x,
                    height + kernel_y,
                )
            )
    return tiles


def with_masks(image: ee.Image, bands: Sequence[str]) -> ee.Image:
    """Masked pixels as 0 (what an export writes for them) plus one mask band per band."""
    masks = image.mask().rename([f"{band}{MASK_SUFFIX}" for band in bands])
    return image.unmask(0).addBands(masks)


class PixelFetcher:
    """``computePixels`` requests through a bounded pool, retried on transient errors.

    Args:
        max_concurrent: Requests in flight at once (at most the project's quota).
        retries: Attempts and back-off (``image_source.earthengine.tasks``).
        sleep: Waits between retries.
    """

    def __init__(
        self,
        max_concurrent: int,
        retries: TaskSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.retries = retries
        self._sleep = sleep

    def fetch(self, image: ee.Image, grid: PixelGrid) -> np.ndarray:
        """One request: the structured array (one field per band) of ``image`` on ``grid``."""
        request = {"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": grid.request()}
        return with_retries(
            partial(ee.data.computePixels, request), "computePixels", self.retries, self._sleep
        )

    def fetch_all(self, image: ee.Image, grids: Sequence[PixelGrid]) -> Iterator[np.ndarray]:
        """Every grid's pixels, in order, with at most ``max_concurrent`` requests in flight."""
        with ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="computePixels") as pool:
            yield from pool.map(partial(self.fetch, image), grids)


def patch_record(
    pixels: np.ndarray, bands: Sequence[str], label_key: str, label: float, index: int
) -> bytes:
    """A table-export record from one patch's pixels (a band is absent if its centre is masked)."""
    centre = (pixels.shape[0] // 2, pixels.shape[1] // 2)
    features: dict[str, Any] = {}
    for band in bands:
        if pixels[f"{band}{MASK_SUFFIX}"][centre] == 0:
            continue  # as reduceRegion returns null for it, and the export drops the column
        features[band] = np.asarray(pixels[band], dtype=np.float32).reshape(-1)
    features[label_key] = [float(label)]
    features[POINT_INDEX_KEY] = [float(index)]
    return encode_example(features)


def tile_record(pixels: np.ndarray, bands: Sequence[str]) -> bytes:
    """An image-export record from one buffered tile's pixels (masked pixels are 0)."""
    return encode_example(
        {band: np.asarray(pixels[band], dtype=np.float32).reshape(-1) for band in bands}
    )


def patch_records(
    fetcher: PixelFetcher,
    image: ee.Image,
    chunk: gpd.GeoDataFrame,
    *,
    bands: Sequence[str],
    radius: int,
    scale_m: float,
    crs: str,
    label_key: str,
) -> Iterator[bytes]:
    """The records of one patch file, fetched in parallel, in the chunk's order."""
    projected = chunk.to_crs(crs) if chunk.crs is not None else chunk
    grids = [
        patch_grid(float(point.x), float(point.y), radius, scale_m, crs)
        for point in projected.geometry
    ]
    labels, indices = chunk["label"].to_numpy(), chunk[POINT_INDEX_KEY].to_numpy()
    for pixels, label, index in zip(
        fetcher.fetch_all(with_masks(image, bands), grids), labels, indices, strict=True
    ):
        yield patch_record(pixels, bands, label_key, float(label), int(index))


def tile_records(
    fetcher: PixelFetcher, image: ee.Image, tiles: Sequence[PixelGrid], bands: Sequence[str]
) -> Iterator[bytes]:
    """The records of consecutive scene tiles, fetched in parallel, in order."""
    for pixels in fetcher.fetch_all(image.unmask(0), tiles):
        yield tile_record(pixels, bands)
