"""Where scan workers put each finished tile: its heatmap (a COG), detections and chips.

A tile is finished when its marker ``done/<tile>.json`` exists with the scan's fingerprint;
the marker is written last and every file goes to a temporary name first and is then renamed,
so a worker killed mid-tile leaves no file that a re-run would mistake for a finished one. A
re-run with the same fingerprint skips finished tiles; a different fingerprint (another model,
threshold, planet...) redoes them.

Layout under the store's folder::

    heatmaps/<tile>.tif      dam probability of the tile's core, Cloud-Optimized GeoTIFF
    heatmap.vrt              all heatmap tiles as one layer (QGIS, GDAL)
    detections/<tile>.json   the detections the tile owns
    chips/<detection>.png    true colour | heatmap | NDWI around each detection
    done/<tile>.json         the tile's marker: fingerprint and counts
    imagery/<digest>/<tile>.tif   a tile's exported imagery (Earth Engine sources only)
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np

from dam_detection.datasets.geotiff import GeoRaster, write_cog

if TYPE_CHECKING:
    from dam_detection.pipelines.scan.tiling import ScanTile

#: No-data value of the heatmap tiles: outside [0, 1].
HEATMAP_NODATA = -1.0


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    draft.write_bytes(data)
    os.replace(draft, path)


class TileStore:
    """A scan's tile folder (see the module docstring for its layout).

    Args:
        path: The folder; created when missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TileStore({str(self.path)!r})"

    def heatmap_path(self, tile_id: str) -> Path:
        """The tile's heatmap COG."""
        return self.path / "heatmaps" / f"{tile_id}.tif"

    def chip_path(self, detection_id: str) -> Path:
        """A detection's chip."""
        return self.path / "chips" / f"{detection_id}.png"

    @property
    def imagery_path(self) -> Path:
        """Where tiles exported by an image source are kept (:mod:`.exported_imagery`)."""
        return self.path / "imagery"

    @property
    def vrt_path(self) -> Path:
        """The region's heatmap as one virtual layer."""
        return self.path / "heatmap.vrt"

    def finished(self, tile_id: str, fingerprint: str) -> bool:
        """Whether the tile was finished by a scan with this fingerprint."""
        marker = self.path / "done" / f"{tile_id}.json"
        try:
            return json.loads(marker.read_text())["fingerprint"] == fingerprint
        except (OSError, ValueError, KeyError):
            return False

    def write_chip(self, detection_id: str, png: bytes) -> None:
        """Store a detection's chip."""
        _atomic_write(self.chip_path(detection_id), png)

    def chip(self, detection_id: str) -> bytes:
        """A detection's chip (PNG bytes)."""
        return self.chip_path(detection_id).read_bytes()

    def write_tile(self, tile: ScanTile, core: np.ndarray, detections: Sequence[dict[str, Any]],
                   fingerprint: str) -> None:  # fmt: skip
        """Store a finished tile: heatmap, detections, then its marker."""
        heatmap = self.heatmap_path(tile.tile_id)
        heatmap.parent.mkdir(parents=True, exist_ok=True)
        draft = heatmap.with_name(f".{heatmap.name}.{uuid.uuid4().hex}.part")
        raster = GeoRaster(np.asarray(core, np.float32), f"EPSG:{tile.epsg}",
                           tile.core_affine(), ("dam_probability",), HEATMAP_NODATA)  # fmt: skip
        write_cog(draft, raster)
        os.replace(draft, heatmap)
        _atomic_write(self.path / "detections" / f"{tile.tile_id}.json",
                      json.dumps(list(detections)).encode())  # fmt: skip
        marker = {"fingerprint": fingerprint, "detections": len(detections)}
        _atomic_write(self.path / "done" / f"{tile.tile_id}.json", json.dumps(marker).encode())

    def detections(self, tile_id: str) -> list[dict[str, Any]]:
        """The detections a finished tile owns."""
        path = self.path / "detections" / f"{tile_id}.json"
        return json.loads(path.read_text())

    def write_vrt(self, tiles: Sequence[ScanTile]) -> Path:
        """Write ``heatmap.vrt``: every tile's heatmap as one layer (one grid, one CRS)."""
        if not tiles:
            raise ValueError("no tiles to put in the heatmap VRT")
        epsgs = {tile.epsg for tile in tiles}
        if len(epsgs) != 1:
            raise ValueError(f"scan tiles lie on several grids {sorted(epsgs)}: one VRT each")
        import rasterio.crs

        pixel = tiles[0].core_affine()[0]
        west = min(tile.core_affine()[2] for tile in tiles)
        north = max(tile.core_affine()[5] for tile in tiles)
        east = max(tile.core_affine()[2] + tile.size_px * pixel for tile in tiles)
        south = min(tile.core_affine()[5] - tile.size_px * pixel for tile in tiles)
        width, height = round((east - west) / pixel), round((north - south) / pixel)
        sources = []
        for tile in tiles:
            _, _, x0, _, _, y0 = tile.core_affine()
            col, row = round((x0 - west) / pixel), round((north - y0) / pixel)
            size = tile.size_px
            sources.append(
                "    <ComplexSource>\n"
                f'      <SourceFilename relativeToVRT="1">heatmaps/{escape(tile.tile_id)}.tif'
                "</SourceFilename>\n"
                "      <SourceBand>1</SourceBand>\n"
                f'      <SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>\n'
                f'      <DstRect xOff="{col}" yOff="{row}" xSize="{size}" ySize="{size}"/>\n'
                f"      <NODATA>{HEATMAP_NODATA:g}</NODATA>\n"
                "    </ComplexSource>\n"
            )
        wkt = rasterio.crs.CRS.from_epsg(epsgs.pop()).to_wkt()
        xml = (
            f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
            f"  <SRS>{escape(wkt)}</SRS>\n"
            f"  <GeoTransform>{west!r}, {pixel!r}, 0.0, {north!r}, 0.0, {-pixel!r}</GeoTransform>\n"
            '  <VRTRasterBand dataType="Float32" band="1">\n'
            f"    <NoDataValue>{HEATMAP_NODATA:g}</NoDataValue>\n"
            "    <Description>dam_probability</Description>\n"
            + "".join(sources)
            + "  </VRTRasterBand>\n</VRTDataset>\n"
        )
        _atomic_write(self.vrt_path, xml.encode())
        return self.vrt_path
