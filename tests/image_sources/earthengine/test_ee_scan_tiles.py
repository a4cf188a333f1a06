"""A region scan on Earth Engine: every tile exported on the scan's own UTM grid, side by side,
assembled once into a GeoTIFF, and read back as exactly the pixels Earth Engine wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from dam_detection.mixer import Mixer, MixerError
from dam_detection.pipelines.scan.exported_imagery import (
    ExportedBlockReader,
    export_tile_imagery,
)
from dam_detection.pipelines.scan.tiling import plan_tiles
from dam_detection.tfrecord_codec import encode_example
from tests.image_sources.earthengine.conftest import FakeTaskApi, destination_prefix
from tests.image_sources.earthengine.ee_graph import constant, invocations
from tests.image_sources.earthengine.test_ee_download import write
from tests.pipelines.scan.helpers import BANDS, COMPOSITE, small_planet

pytestmark = pytest.mark.usefixtures("ee_offline")

HALO = 7


def two_tiles():
    """Two neighbouring 300-pixel tiles (with 8 px of overlap) of the planet's UTM zone 12."""
    tiles = plan_tiles(shapely.box(-110.33, 37.40, -110.30, 37.402), "t", 300, 8)
    assert len(tiles) == 2 and tiles[0].epsg == 32612
    return tiles


def planet_export(bucket: Path, keep_patches: int | None = None, planet=None, composite=COMPOSITE):
    """What Earth Engine leaves in the bucket for an image export: the ``planet``'s pixels
    (default: the scan tests' small one) on the grid the request names (its ``Image.reproject``
    and clip), patch by patch, in two files."""
    truth = (planet or small_planet()).block_reader(composite, BANDS)

    def writes(request_id, config):
        expression = config["expression"]
        (reproject,) = invocations(expression, "Image.reproject")
        (clip,) = invocations(expression, "Image.clipToBoundsAndScale")
        crs = constant(reproject["crs"]["functionInvocationValue"]["arguments"]["crs"])
        affine = constant(reproject["crsTransform"])
        _, _, width, height = constant(
            clip["geometry"]["functionInvocationValue"]["arguments"]["coordinates"]
        )
        options = config["fileExportOptions"]["tfRecordOptions"]
        assert "marginDimensions" not in options  # no buffer: the grid carries the halo
        side = options["tileDimensions"]["width"]
        epsg = int(crs.split(":")[1])
        pixels = truth(epsg, round(affine[2] / 10), round(affine[5] / 10) - 1, width, height)
        records = [
            encode_example(
                {b: pixels[r : r + side, c : c + side, i].ravel() for i, b in enumerate(BANDS)}
            )  # fmt: skip
            for r in range(0, height, side)
            for c in range(0, width, side)
        ]
        mixer = Mixer(crs, tuple(affine), side, side, width // side, len(records))
        prefix = bucket / destination_prefix(config)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        (prefix.parent / f"{prefix.name}-mixer.json").write_text(json.dumps(mixer.to_json()))
        kept = records[:keep_patches]
        write(prefix.parent / f"{prefix.name}-00000.tfrecord.gz", kept[:1], True)
        write(prefix.parent / f"{prefix.name}-00001.tfrecord.gz", kept[1:], True)

    return writes


def test_tiles_are_exported_side_by_side_and_read_back_as_the_pixels_on_the_grid(
    scene_source, bucket, tmp_path, monkeypatch
):
    tiles = two_tiles()
    api = FakeTaskApi(planet_export(bucket)).install(monkeypatch)
    empty = ExportedBlockReader("earthengine test", BANDS)
    reader = export_tile_imagery(
        scene_source, empty, tiles, HALO, tmp_path / "imagery", COMPOSITE, 1
    )
    assert len(api.starts) == 2 and api.max_live == 2  # both exports ran at once
    planet = small_planet().block_reader(COMPOSITE, BANDS)
    for tile in tiles:
        # Exactly the block a scan worker asks for: the window plus the halo.
        block = (tile.epsg, tile.window_col - HALO, tile.window_top + HALO,
                 tile.window_px + 2 * HALO, tile.window_px + 2 * HALO)  # fmt: skip
        np.testing.assert_array_equal(reader(*block), planet(*block))
    # The imagery opens as a georeferenced GeoTIFF, one band per model band.
    import rasterio

    with rasterio.open(reader.tiles[0].path) as raster:
        assert raster.crs.to_epsg() == 32612 and raster.descriptions == BANDS
        assert raster.transform.c == (tiles[0].window_col - HALO) * 10.0
    # A re-run finds the imagery on disk and exports nothing.
    again = FakeTaskApi(planet_export(bucket)).install(monkeypatch)
    rerun = export_tile_imagery(
        scene_source, empty, tiles, HALO, tmp_path / "imagery", COMPOSITE, 1
    )
    assert again.starts == [] and rerun.tiles == reader.tiles
    # A block outside every exported tile is refused, not filled with zeros.
    with pytest.raises(ValueError, match="no exported tile imagery holds the block"):
        reader(32612, tiles[0].window_col - HALO - 1, tiles[0].window_top, 10, 10)


def test_a_torn_export_fails_naming_the_tile_and_leaves_no_imagery(
    scene_source, bucket, tmp_path, monkeypatch
):
    (tile, _) = two_tiles()
    FakeTaskApi(planet_export(bucket, keep_patches=3)).install(monkeypatch)
    empty = ExportedBlockReader("earthengine test", BANDS)
    with pytest.raises(MixerError, match=f"tile {tile.tile_id}: the export holds 3 patches"):
        export_tile_imagery(scene_source, empty, [tile], HALO, tmp_path / "imagery", COMPOSITE, 1)
    assert not any(p.is_file() for p in (tmp_path / "imagery").rglob("*"))
