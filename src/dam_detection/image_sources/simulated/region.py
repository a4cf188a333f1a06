"""Blocks of the planet on a projected grid, for region scans.

A scan tile is read as one block of the planet's own 10 m UTM grid (tile copies, no per-pixel
lookup) when it lies in its zone; a window that crosses a zone edge takes each pixel from the
tiles of its own zone, as scene exports do. Pixels are what a scene export of the same place
holds: masked pixels are 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import Transformer

from dam_detection.image_sources.simulated.world import (
    PIXEL_M,
    Planet,
    compose_ahead,
    keep_tile_images,
    sample_block,
    sample_lonlat,
    tiles_covering,
    zone_epsg,
)

#: Rows looked up at once where a block crosses a zone edge.
_STRIP_ROWS = 128


@dataclass(frozen=True)
class PlanetBlockReader:
    """Reads ``(height, width, bands)`` blocks of the planet; picklable, for Dask workers.

    Attributes:
        planet: The planet.
        month: The composite's month.
        bands: Band order of the blocks.
    """

    planet: Planet
    month: int
    bands: tuple[str, ...]

    def compose_ahead(self, epsg: int, windows: list[tuple[int, int, int]], workers: int) -> int:
        """Compose into the tile cache, on the rendering pool, the planet tiles that blocks of
        ``windows`` (``(first_col, top_north, side)`` squares of zone ``epsg``'s grid) will
        read; those of neighbouring zones, read only across a zone edge, are left to the reader.

        Returns:
            How many tiles were composed now.
        """
        keys = []
        for first_col, top_north, side in windows:
            centres = (  # of the window's corner pixels: no tile beyond its edge
                (first_col + 0.5) * PIXEL_M, (top_north - side + 1.5) * PIXEL_M,
                (first_col + side - 0.5) * PIXEL_M, (top_north + 0.5) * PIXEL_M,
            )  # fmt: skip
            keys.extend(tiles_covering(self.planet, epsg, centres))
        return compose_ahead(self.planet, keys, workers)

    def __call__(self, epsg: int, first_col: int, top_north: int, width: int,
                 height: int) -> np.ndarray:  # fmt: skip
        """The block whose north-west pixel is column ``first_col``, northward row ``top_north``
        of zone ``epsg``'s 10 m grid (float32, masked pixels 0).
        """
        # A worker keeps the planet tiles of this block only (its neighbour shares some):
        # its memory is then the same however large the region.
        size = self.planet.tile_px
        across = (first_col + width - 1) // size - first_col // size + 1
        down = top_north // size - (top_north - height + 1) // size + 1
        keep_tile_images(across * down)
        if _within_zone(epsg, first_col, top_north, width, height):
            sample = sample_block(
                self.planet, self.month, self.bands, epsg, first_col, top_north, width, height
            )
            return np.stack([sample.bands[band] for band in self.bands], axis=-1)
        # Across a zone edge every pixel is looked up by its longitude and latitude, in strips
        # of rows: the lookup's temporaries (a dozen arrays per pixel) stay small, and a strip
        # needs only the tiles of its rows in either zone, which the kept tiles hold.
        block = np.zeros((height, width, len(self.bands)), np.float32)
        to_lonlat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)
        x = (first_col + np.arange(width) + 0.5) * PIXEL_M
        for top in range(0, height, _STRIP_ROWS):
            rows = np.arange(top, min(top + _STRIP_ROWS, height))
            grid_x, grid_y = np.meshgrid(x, (top_north - rows + 0.5) * PIXEL_M)
            lon, lat = to_lonlat.transform(grid_x, grid_y)
            sample = sample_lonlat(
                self.planet, self.month, self.bands, np.asarray(lon), np.asarray(lat)
            )
            block[rows] = np.stack([sample.bands[band] for band in self.bands], axis=-1)
        return block


def _within_zone(epsg: int, first_col: int, top_north: int, width: int, height: int) -> bool:
    if not (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        return False
    x = np.array([first_col, first_col + width, first_col, first_col + width]) * PIXEL_M
    top, bottom = top_north + 1, top_north + 1 - height
    y = np.array([top, top, bottom, bottom])
    lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(
        x, y * PIXEL_M
    )
    return bool((zone_epsg(np.asarray(lon), np.asarray(lat)) == epsg).all())
