"""Scan tiles read from an image source that exports imagery (Earth Engine).

The simulated planet renders any block on demand; Earth Engine cannot be asked for pixels by a
Dask worker (the session lives in the process that initialised it, and exports take minutes).
So before the workers start, every tile still to scan is exported whole: its window plus the
halo the FCN needs, on the scan's own UTM grid (an explicit ``crs`` and ``crsTransform``, so
Earth Engine does not resample or shift it), as an Earth Engine image export (TFRecord patches
plus the mixer) through the source's task queue, all tiles side by side within its limits. Each
finished export is assembled once into a tiled GeoTIFF under the scan's folder
(``imagery/<source fingerprint>/<tile>.tif``, openable in QGIS), and the workers read their
blocks from those files with :class:`ExportedBlockReader`. A re-run finds the files and exports
nothing again; imagery of another composite or band list lands in another folder.

With a remote Dask cluster the scan's folder must be storage the workers share.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer

from dam_detection.datasets.geotiff import GeoRaster, write_geotiff
from dam_detection.datasets.image_export import decode_patch
from dam_detection.image_sources.base import CompositeWindow, SceneRequest
from dam_detection.mixer import Mixer, MixerError, buffered_shape
from dam_detection.pipelines.scan.tiling import PIXEL_M, ScanTile

logger = logging.getLogger(__name__)

#: Unbuffered patch side of a tile export (Earth Engine's ``patchDimensions``).
EXPORT_PATCH_PX = 256


@dataclass(frozen=True)
class ExportedTile:
    """One tile's imagery on disk and the block of the scan grid it covers.

    Attributes:
        tile_id: The scan tile.
        epsg: The grid's CRS.
        first_col: Grid column (easting / 10 m) of the west pixel.
        top_north: Grid row, counted northward, of the north pixel.
        width: Pixels across.
        height: Pixels down.
        path: The GeoTIFF.
    """

    tile_id: str
    epsg: int
    first_col: int
    top_north: int
    width: int
    height: int
    path: str

    def holds(self, epsg: int, first_col: int, top_north: int, width: int, height: int) -> bool:
        """Whether the block lies wholly inside this tile's imagery."""
        return (
            epsg == self.epsg
            and self.first_col <= first_col
            and first_col + width <= self.first_col + self.width
            and top_north <= self.top_north
            and top_north - height >= self.top_north - self.height
        )


@dataclass(frozen=True)
class ExportedBlockReader:
    """Reads blocks of the scan grid from exported tile imagery (a scan's ``BlockReader``).

    Attributes:
        source: What decides the pixels (image source, composite, bands), for the scan's
            fingerprint and the imagery's folder.
        bands: Channel order of the blocks it returns.
        tiles: The tiles on disk; not part of the fingerprint (a re-run that scans fewer tiles
            reads the same pixels).
    """

    source: str
    bands: tuple[str, ...]
    tiles: tuple[ExportedTile, ...] = field(default=(), repr=False, compare=False)

    @property
    def key(self) -> str:
        """A short digest of :attr:`source` and :attr:`bands`: the imagery's folder name."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]

    def __call__(
        self, epsg: int, first_col: int, top_north: int, width: int, height: int
    ) -> np.ndarray:
        """``(height, width, bands)`` float32 pixels of one block (masked pixels 0).

        Raises:
            ValueError: If no exported tile holds the whole block.
        """
        import rasterio
        from rasterio.windows import Window

        for tile in self.tiles:
            if tile.holds(epsg, first_col, top_north, width, height):
                window = Window(first_col - tile.first_col, tile.top_north - top_north,
                                width, height)  # fmt: skip
                with rasterio.open(tile.path) as raster:
                    data = raster.read(window=window)
                return np.ascontiguousarray(np.moveaxis(data, 0, -1), dtype=np.float32)
        raise ValueError(
            f"no exported tile imagery holds the block of EPSG:{epsg} columns {first_col}.."
            f"{first_col + width - 1}, northward rows {top_north - height + 1}..{top_north} "
            f"({len(self.tiles)} tiles on disk); re-run the scan so its tiles are exported"
        )


def export_grid_of(tile: ScanTile, halo: int) -> tuple[int, int, int]:
    """``(first_col, top_north, side)`` of a tile's export: its window plus ``halo``, grown to
    whole patches east and south (Earth Engine drops partial patches).
    """
    needed = tile.window_px + 2 * halo
    side = -(-needed // EXPORT_PATCH_PX) * EXPORT_PATCH_PX
    return tile.window_col - halo, tile.window_top + halo, side


def export_tile_imagery(
    source: Any,
    reader: ExportedBlockReader,
    tiles: Sequence[ScanTile],
    halo: int,
    folder: str | os.PathLike[str],
    composite: CompositeWindow,
    seed: int,
) -> ExportedBlockReader:
    """Export the imagery of ``tiles`` that is not on disk yet and return a reader of it.

    Args:
        source: An image source with ``grid_export`` (:class:`~dam_detection.image_sources.
            earthengine.EarthEngineSource`).
        reader: The reader without tiles (from the scan node, which fingerprints it first).
        tiles: The tiles to scan.
        halo: Context pixels the FCN needs around each window.
        folder: Where the imagery is kept (``<folder>/<reader.key>/<tile>.tif``).
        composite: The composite's dates and cloud limit.
        seed: The run seed (for the source).

    Raises:
        MixerError: If an export's files disagree with its mixer (a missing or torn file).
    """
    from dam_detection.image_sources.earthengine.scenes import SceneGrid

    root = Path(folder) / reader.key
    entries, exports = [], {}
    for tile in tiles:
        first_col, top_north, side = export_grid_of(tile, halo)
        path = root / f"{tile.tile_id}.tif"
        entries.append(ExportedTile(tile.tile_id, tile.epsg, first_col, top_north, side, side,
                                    str(path)))  # fmt: skip
        if path.exists():
            continue
        transform = (PIXEL_M, 0.0, first_col * PIXEL_M, 0.0, -PIXEL_M, (top_north + 1) * PIXEL_M)
        per_row = side // EXPORT_PATCH_PX
        grid = SceneGrid(f"EPSG:{tile.epsg}", transform, side, side, per_row, per_row * per_row)
        lon, lat = Transformer.from_crs(f"EPSG:{tile.epsg}", "EPSG:4326", always_xy=True).transform(
            (first_col + side / 2) * PIXEL_M, (top_north + 1 - side / 2) * PIXEL_M
        )
        request = SceneRequest(
            name=f"scan-{tile.tile_id}", center_lon=float(lon), center_lat=float(lat),
            composite=composite, width_px=side, height_px=side, bands=reader.bands,
            scale_m=PIXEL_M, patch_dimensions=(EXPORT_PATCH_PX, EXPORT_PATCH_PX),
            kernel_size=(0, 0), file_prefix="tile", seed=seed,
        )  # fmt: skip
        # Every export is planned before the first is waited for: they run side by side.
        exports[tile.tile_id] = (source.grid_export(request, grid), grid, path)
    logger.info("scan: exporting the imagery of %d tiles (%d on disk already)", len(exports),
                len(tiles) - len(exports))  # fmt: skip
    for tile_id, (export, grid, path) in exports.items():
        image = assemble_export(export.mixer, export.files, reader.bands, tile_id)
        raster = GeoRaster(image, grid.crs, grid.transform, reader.bands)
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        # Tiled and uncompressed: a working copy for the workers, written in a tenth of a second
        # (a compressed COG took 4 s a tile; benchmarks/results_scan.md).
        write_geotiff(draft, raster, compression=None)
        os.replace(draft, path)  # a killed run never leaves a half-written tile
        logger.info("scan: tile %s exported (%d x %d px)", tile_id, grid.width_px,
                    grid.height_px)  # fmt: skip
    return replace(reader, tiles=tuple(entries))


def assemble_export(mixer_json: Any, files: Any, bands: Sequence[str], name: str) -> np.ndarray:
    """An unbuffered image export (``kernelSize`` none) as one ``(height, width, bands)`` array.

    Args:
        mixer_json: The export's mixer.
        files: File name to lazy records, in name order (``SceneExport.files``).
        bands: Bands to stack, in this order.
        name: The tile, for messages.

    Raises:
        MixerError: If a record lacks a band or has the wrong size, or the files hold more or
            fewer patches than the mixer's ``totalPatches``.
    """
    mixer = Mixer.from_json(mixer_json, f"tile {name} mixer")
    shape = buffered_shape(mixer, (0, 0))
    image = np.zeros((mixer.height_px, mixer.width_px, len(bands)), np.float32)
    index = 0
    for file_name in files:
        for position, record in enumerate(files[file_name]()):
            if index >= mixer.total_patches:
                raise MixerError(
                    f"tile {name}: {file_name} record {position} is patch {index}, beyond "
                    f"totalPatches {mixer.total_patches}; delete the tile's export and re-run"
                )
            row, col = mixer.patch_origin(index)
            image[row : row + shape[0], col : col + shape[1]] = decode_patch(
                record, bands, shape, f"tile {name}: {file_name} record {position}", "its mixer"
            )
            index += 1
    if index != mixer.total_patches:
        raise MixerError(
            f"tile {name}: the export holds {index} patches but its mixer says totalPatches "
            f"{mixer.total_patches}; a file is missing or truncated, delete it and re-run"
        )
    return image
