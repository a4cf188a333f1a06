"""Cut a region into scan tiles on a projected 10 m grid.

Each tile is a square ``core`` of ``size_px`` pixels; the cores tile the grid without gaps or
overlap, so every place belongs to exactly one tile. A tile is predicted over its core plus
``overlap_px`` on every side (its ``window``): a dam on a seam lies whole in both windows, and
only the tile whose core holds the detection keeps it (:mod:`.merge`). Tiles whose core misses
the region are not scanned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

#: Metres per pixel of the scan grid (Sentinel-2's visible bands).
PIXEL_M = 10.0


@dataclass(frozen=True)
class ScanTile:
    """One tile of the scan grid.

    Attributes:
        tile_id: ``<region>_<column>_<row>`` (grid indices of the core, row counted northward).
        epsg: Projected CRS of the grid.
        core_col: Grid column (easting / 10 m) of the core's west pixel.
        core_top: Grid row, counted northward (northing / 10 m), of the core's north pixel.
        size_px: Core side in pixels.
        overlap_px: Pixels predicted beyond each edge of the core.
    """

    tile_id: str
    epsg: int
    core_col: int
    core_top: int
    size_px: int
    overlap_px: int

    @property
    def window_col(self) -> int:
        """Grid column of the window's west pixel."""
        return self.core_col - self.overlap_px

    @property
    def window_top(self) -> int:
        """Northward grid row of the window's north pixel."""
        return self.core_top + self.overlap_px

    @property
    def window_px(self) -> int:
        """Window side in pixels."""
        return self.size_px + 2 * self.overlap_px

    def core_bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the core in the grid's metres."""
        west = self.core_col * PIXEL_M
        north = (self.core_top + 1) * PIXEL_M
        return (west, north - self.size_px * PIXEL_M, west + self.size_px * PIXEL_M, north)

    def window_affine(self) -> tuple[float, float, float, float, float, float]:
        """Earth Engine-style affine ``[xScale, xShear, x0, yShear, yScale, y0]`` of the window."""
        west = self.window_col * PIXEL_M
        north = (self.window_top + 1) * PIXEL_M
        return (PIXEL_M, 0.0, west, 0.0, -PIXEL_M, north)

    def core_affine(self) -> tuple[float, float, float, float, float, float]:
        """Affine of the core (the heatmap tile that is kept)."""
        west, _, _, north = self.core_bounds()
        return (PIXEL_M, 0.0, west, 0.0, -PIXEL_M, north)


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the UTM zone (WGS 84) holding a point."""
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def plan_tiles(region: shapely.Geometry, name: str, size_px: int, overlap_px: int,
               epsg: int | None = None) -> list[ScanTile]:  # fmt: skip
    """Tiles whose core meets ``region`` (EPSG:4326), west to east, then north to south.

    Args:
        region: The region's polygon(s) in longitude/latitude.
        name: Region name, the prefix of every tile id.
        size_px: Core side in pixels.
        overlap_px: Pixels predicted beyond each core edge.
        epsg: The grid's CRS; ``None``: the UTM zone of the region's centre.

    Returns:
        The tiles, in a stable order (the same region and settings always give the same list).

    Raises:
        ValueError: If the region is empty or the CRS is not projected in metres.
    """
    if region.is_empty:
        raise ValueError(f"scan region {name!r} is empty")
    if epsg is None:
        centre = region.centroid
        epsg = utm_epsg(centre.x, centre.y)
    crs = CRS.from_epsg(epsg)
    if not crs.is_projected or crs.axis_info[0].unit_name != "metre":
        raise ValueError(f"scan.tiles.epsg {epsg} is not a projected CRS in metres")
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    projected = shapely.transform(
        shapely.segmentize(region, 0.01), to_grid.transform, interleaved=False
    )
    xmin, ymin, xmax, ymax = projected.bounds
    side = size_px * PIXEL_M
    tiles = []
    for iy in range(int(np.floor(ymax / side)), int(np.floor(ymin / side)) - 1, -1):
        for ix in range(int(np.floor(xmin / side)), int(np.floor(xmax / side)) + 1):
            core = shapely.box(ix * side, iy * side, (ix + 1) * side, (iy + 1) * side)
            if not core.intersects(projected):
                continue
            tiles.append(
                ScanTile(
                    tile_id=f"{name}_{ix}_{iy}",
                    epsg=int(epsg),
                    core_col=ix * size_px,
                    core_top=(iy + 1) * size_px - 1,
                    size_px=size_px,
                    overlap_px=overlap_px,
                )
            )
    return tiles


def grid_xy(points: gpd.GeoDataFrame, epsg: int) -> np.ndarray:
    """``(n, 2)`` metres on the grid ``epsg`` of EPSG:4326 points."""
    if not len(points):
        return np.empty((0, 2))
    to_grid = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    x, y = to_grid.transform(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    return np.column_stack([x, y])


def tiles_frame(tiles: list[ScanTile]) -> gpd.GeoDataFrame:
    """The tiles as a table with their core outlines in EPSG:4326 (for maps and the catalog)."""
    if not tiles:
        return gpd.GeoDataFrame({"tile_id": []}, geometry=[], crs="EPSG:4326")
    outlines = []
    for tile in tiles:
        to_lonlat = Transformer.from_crs(f"EPSG:{tile.epsg}", "EPSG:4326", always_xy=True)
        core = shapely.segmentize(shapely.box(*tile.core_bounds()), PIXEL_M * 64)
        outlines.append(shapely.transform(core, to_lonlat.transform, interleaved=False))
    frame = pd.DataFrame([asdict(tile) for tile in tiles])
    return gpd.GeoDataFrame(frame, geometry=outlines, crs="EPSG:4326")


def tiles_from_frame(frame: pd.DataFrame) -> list[ScanTile]:
    """The tiles of a table written by :func:`tiles_frame`."""
    return [
        ScanTile(
            tile_id=str(row["tile_id"]),
            epsg=int(row["epsg"]),
            core_col=int(row["core_col"]),
            core_top=int(row["core_top"]),
            size_px=int(row["size_px"]),
            overlap_px=int(row["overlap_px"]),
        )
        for _, row in frame.iterrows()
    ]
