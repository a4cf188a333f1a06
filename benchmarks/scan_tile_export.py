"""Benchmark: what a scan tile costs on Earth Engine beyond the FCN, on this machine.

With Earth Engine the scan node turns every finished tile export (TFRecord patches plus the
mixer) into a GeoTIFF once, and the workers read their blocks from it
(``dam_detection.pipelines.scan.exported_imagery``). This measures, for one tile of the default
scan settings (2048-pixel core, 24 px of overlap, the default FCN's 63-pixel halo: a 2304-pixel
export of 81 patches, five bands), side by side in one run:

- ``encode``: writing the export's records as Earth Engine does (gzip TFRecord; not part of
  the scan: Earth Engine does it), for scale;
- ``assemble``: reading the records back into one array (what the scan node does per tile);
- ``geotiff``: writing that array as a tiled, uncompressed GeoTIFF (and, to compare, as a
  DEFLATE-compressed Cloud-Optimized GeoTIFF with overviews);
- ``read``: a worker reading its tile's block from the GeoTIFF;
- ``planet``: the planet rendering the same block from its cached tiles (the offline path).

The planet's pixels stand in for Earth Engine's. Nothing here talks to Earth Engine: the
export's own time on Google's side is not measured.

Run: ``.venv/bin/python benchmarks/scan_tile_export.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from dam_detection.datasets.geotiff import GeoRaster, write_cog, write_geotiff
from dam_detection.image_sources.base import CompositeWindow
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.mixer import Mixer
from dam_detection.pipelines.scan.exported_imagery import (
    EXPORT_PATCH_PX,
    ExportedBlockReader,
    ExportedTile,
    assemble_export,
    export_grid_of,
)
from dam_detection.pipelines.scan.tiling import ScanTile
from dam_detection.tfrecord_codec import encode_example, frame_record, iter_records

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
COMPOSITE = CompositeWindow("2019-04-01", "2019-10-01", 20.0)
HALO = 63  # the default FCN's receptive field of 127 px


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tile = ScanTile("bench", 32612, 56000, 414000, 2048, 24)
    first_col, top_north, side = export_grid_of(tile, HALO)
    cache = tempfile.mkdtemp(prefix="planet-")
    planet = SimulatedEarth(seed=42, tile_cache=cache).block_reader(COMPOSITE, BANDS)
    planet(tile.epsg, first_col, top_north, side, side)  # compose and cache the planet tiles
    planet_s, pixels = timed(lambda: planet(tile.epsg, first_col, top_north, side, side), 1)

    def encode() -> bytes:
        records = [
            encode_example(
                {
                    b: pixels[r : r + EXPORT_PATCH_PX, c : c + EXPORT_PATCH_PX, i].ravel()
                    for i, b in enumerate(BANDS)
                }
            )  # fmt: skip
            for r in range(0, side, EXPORT_PATCH_PX)
            for c in range(0, side, EXPORT_PATCH_PX)
        ]
        return gzip.compress(b"".join(frame_record(r) for r in records), compresslevel=6)

    encode_s, data = timed(encode, 1)
    per_row = side // EXPORT_PATCH_PX
    transform = (10.0, 0.0, first_col * 10.0, 0.0, -10.0, (top_north + 1) * 10.0)
    mixer = Mixer("EPSG:32612", transform, EXPORT_PATCH_PX, EXPORT_PATCH_PX, per_row,
                  per_row * per_row).to_json()  # fmt: skip

    def records():
        with gzip.open(io.BytesIO(data)) as stream:
            yield from iter_records(stream)

    files = {"tile-00000.tfrecord.gz": records}
    assemble_s, image = timed(lambda: assemble_export(mixer, files, BANDS, "bench"), args.repeat)
    assert np.array_equal(image, pixels)
    folder = Path(tempfile.mkdtemp(prefix="tiles-"))
    path = folder / "bench.tif"
    raster = GeoRaster(image, "EPSG:32612", transform, BANDS)
    cog_s, _ = timed(lambda: write_cog(folder / "cog.tif", raster), args.repeat)
    geotiff_s, _ = timed(lambda: write_geotiff(path, raster, compression=None), args.repeat)
    reader = ExportedBlockReader("bench", BANDS, (ExportedTile(
        "bench", 32612, first_col, top_north, side, side, str(path)),))  # fmt: skip
    block = (tile.epsg, tile.window_col - HALO, tile.window_top + HALO,
             tile.window_px + 2 * HALO, tile.window_px + 2 * HALO)  # fmt: skip
    read_s, read = timed(lambda: reader(*block), args.repeat)
    assert np.array_equal(read, planet(*block))
    rows = [
        ("encode (Earth Engine's side, for scale)", encode_s),
        ("assemble the records into an array", assemble_s),
        ("write the GeoTIFF (tiled, uncompressed: what the scan writes)", geotiff_s),
        ("write it as a compressed COG instead (for comparison)", cog_s),
        ("a worker reads its block from the GeoTIFF", read_s),
        ("the planet renders the same block (cached tiles)", planet_s),
    ]
    print(f"# scan tile export, {date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(
        f"export {side} x {side} px x {len(BANDS)} bands, {per_row * per_row} patches, "
        f"{len(data) / 1e6:.1f} MB gzip, GeoTIFF {path.stat().st_size / 1e6:.1f} MB"
    )
    print("| step | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
