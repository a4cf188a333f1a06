"""Scene exports of the simulated Earth: mixer, files, overlap and truth."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Transformer

from dam_detection.image_sources.base import SceneRequest
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.mixer import Mixer
from dam_detection.tfrecord_codec import decode_example
from tests.settings import composite_window

WINDOW = composite_window()

PATCH, KERNEL = 64, 16


@pytest.fixture(scope="module")
def export():
    scene = SceneRequest(
        composite=WINDOW,
        name="tiny",
        center_lon=-111.2,
        center_lat=33.6,
        width_px=300,
        height_px=200,
        bands=("B2", "B3", "NDWI", "AVE"),
        patch_dimensions=(PATCH, PATCH),
        kernel_size=(KERNEL, KERNEL),
        file_prefix="tiny",
        max_file_size_bytes=int(3.5 * 4 * (PATCH + KERNEL) ** 2 * 4),
    )
    # Small tiles and many dams: the scene holds some of the planet's structures.
    return SimulatedEarth(seed=11, tile_px=256, density={"dams": 60.0}).scene_export(scene)


def test_mixer_is_earth_engine_shaped(export) -> None:
    assert "kernelSize" not in export.mixer
    mixer = Mixer.from_json(export.mixer)
    assert mixer.crs == "EPSG:32612"
    assert (mixer.patches_per_row, mixer.total_patches) == (4, 12)
    assert mixer.affine[0] == 10.0 and mixer.affine[4] == -10.0


def test_files_roll_over_and_hold_every_patch(export) -> None:
    names = list(export.files)
    assert names == sorted(names) and names[0] == "tiny-00000.tfrecord.gz"
    assert len(names) == 4  # 12 patches, 3 per file at this maxFileSize
    records = [decode_example(r) for name in names for r in export.files[name]()]
    assert len(records) == 12
    assert all(r["B2"].shape == ((PATCH + KERNEL) ** 2,) for r in records)


def test_overlapping_pixels_of_neighbours_are_equal(export) -> None:
    size = PATCH + KERNEL
    records = [decode_example(r) for name in export.files for r in export.files[name]()]
    patches = [r["AVE"].reshape(size, size) for r in records]
    for index in range(12):
        row, col = divmod(index, 4)
        if col < 3:
            np.testing.assert_array_equal(patches[index][:, PATCH:], patches[index + 1][:, :KERNEL])
        if row < 2:
            np.testing.assert_array_equal(patches[index][PATCH:, :], patches[index + 4][:KERNEL, :])
    # Outside the scene the buffer is masked (0).
    assert not patches[0][: KERNEL // 2, :].any() and not patches[0][:, : KERNEL // 2].any()
    assert patches[0][KERNEL // 2 :, KERNEL // 2 :].all() or patches[0].max() > 0


def test_truth_lies_inside_the_scene(export) -> None:
    truth = export.truth
    assert set(truth["kind"]) == {"dam_wall", "reservoir"}
    assert truth.crs.to_epsg() == 4326
    mixer = Mixer.from_json(export.mixer)
    x0, y0 = mixer.pixel_to_crs(0, 0)
    x1, y1 = mixer.pixel_to_crs(mixer.width_px, mixer.height_px)
    to_utm = Transformer.from_crs("EPSG:4326", mixer.crs, always_xy=True)
    bounds = shapely.box(x0, y1, x1, y0)
    for geometry in truth[truth["kind"] == "dam_wall"].geometry:
        assert bounds.contains(shapely.Point(*to_utm.transform(geometry.x, geometry.y)))
    walls = truth[truth["kind"] == "dam_wall"]
    reservoirs = truth[truth["kind"] == "reservoir"]
    assert set(reservoirs["dam_id"]) <= set(walls["dam_id"])


def test_scene_is_deterministic(export) -> None:
    scene = SceneRequest(
        composite=WINDOW,
        name="again",
        center_lon=-111.2,
        center_lat=33.6,
        width_px=128,
        height_px=128,
        bands=("B4",),
        patch_dimensions=(PATCH, PATCH),
        kernel_size=(0, 0),
    )
    source = SimulatedEarth(seed=2, tile_px=256)
    first = [r for f in source.scene_export(scene).files.values() for r in f()]
    again = [
        r
        for f in SimulatedEarth(seed=2, tile_px=256).scene_export(scene).files.values()
        for r in f()
    ]
    assert first == again


def test_scene_options_are_refused_the_planet_decides() -> None:
    scene = SceneRequest(
        composite=WINDOW, name="bad", center_lon=0.0, center_lat=0.0, options={"dams": 2}
    )
    with pytest.raises(ValueError, match=r"planet decides.*image_source.simulated.density"):
        SimulatedEarth().scene_export(scene)
