"""Blocks of neighbouring patches with only the receptive field's halo: the same heatmap as
predicting each buffered patch, for a fraction of the computed area."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dam_detection.mixer import Mixer
from dam_detection.pipelines.segment.blocks import (
    computed_area_ratio,
    halo_for,
    predict_scene_blocked,
)
from dam_detection.pipelines.segment.predict import batched, predict_scene
from dam_detection.pipelines.train.models import Relief, dilated_fcn, receptive_field
from tests.pipelines.segment.scenes import BANDS, UNIT_STATS, buffered_patches, padded_mosaic

KERNEL = (16, 16)
#: 5 x 3 patches of 16 px: blocks of 2 leave a partial block row and column.
MIXER = Mixer("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0), 16, 16, 5, 15)


@pytest.fixture(scope="module", params=["convolutions", "with_relief"])
def model(request: pytest.FixtureRequest) -> keras.Model:
    keras.utils.set_random_seed(4)
    if request.param == "with_relief":  # 7 px of convolutions and the relief's window: 11
        return dilated_fcn(BANDS, width=6, dilations=(1,), relief=Relief(5))
    return dilated_fcn(BANDS, width=6, dilations=(1, 2))  # receptive field 15: halo 7 < 8


def mosaic_with_no_data() -> np.ndarray:
    padded = padded_mosaic(seed=5, mixer=MIXER, kernel=KERNEL)
    padded[20, 30, 1] = np.nan  # one pixel of no data, inside a core
    return padded


def test_blocks_give_the_per_patch_heatmap(model):
    halo = halo_for(receptive_field(model))
    assert halo == {"dilated_fcn_rf15px": 7, "dilated_fcn_rf11px": 5}[model.name]
    patches = buffered_patches(mosaic_with_no_data(), MIXER, KERNEL)
    per_patch = predict_scene(model.predict_on_batch, batched(patches, 4), MIXER, KERNEL,
                              UNIT_STATS, BANDS)  # fmt: skip
    blocked = predict_scene_blocked(model.predict_on_batch, batched(patches, 4), MIXER, KERNEL,
                                    UNIT_STATS, BANDS, halo=halo, block_patches=2)  # fmt: skip
    # Within float16 rounding of the heatmap, everywhere, seams and scene edges included.
    np.testing.assert_allclose(
        blocked.probability.astype(np.float32), per_patch.probability.astype(np.float32),
        atol=1e-3,
    )  # fmt: skip
    assert blocked.non_finite_pixels == per_patch.non_finite_pixels == 1
    # equal blocks of a strip predicted together: the same heatmap
    batched_blocks = predict_scene_blocked(model.predict_on_batch, batched(patches, 4), MIXER,
                                           KERNEL, UNIT_STATS, BANDS, halo=halo, block_patches=2,
                                           blocks_per_batch=2)  # fmt: skip
    np.testing.assert_allclose(
        batched_blocks.probability.astype(np.float32), blocked.probability.astype(np.float32),
        atol=1e-3,
    )  # fmt: skip
    np.testing.assert_array_equal(blocked.no_data, per_patch.no_data)
    np.testing.assert_array_equal(blocked.preview, per_patch.preview)
    # Less context than the field needs changes the pixels near block edges: the halo matters.
    short = predict_scene_blocked(model.predict_on_batch, batched(patches, 4), MIXER, KERNEL,
                                  UNIT_STATS, BANDS, halo=2, block_patches=2)  # fmt: skip
    difference = np.abs(short.probability.astype(np.float32) - per_patch.probability)
    assert difference.max() > 1e-2


def test_the_computed_area_shrinks_with_the_block():
    tile = Mixer("EPSG:32614", (10.0, 0.0, 0.0, 0.0, -10.0, 0.0), 256, 256, 42, 42 * 42)
    # Today: every 256 px patch computed with its 64 px margins.
    assert computed_area_ratio(tile, 64, 1, 1) == pytest.approx((384 / 256) ** 2)
    # 4 x 4 blocks with the default model's 63 px halo, over a whole Sentinel-2 tile.
    assert computed_area_ratio(tile, halo_for(127), 4, 4) < 1.3


def test_a_halo_wider_than_the_export_margins_is_refused(model):
    patches = buffered_patches(mosaic_with_no_data(), MIXER, KERNEL)
    with pytest.raises(ValueError, match="kernel_size of at least 20"):
        predict_scene_blocked(model.predict_on_batch, batched(patches, 4), MIXER, KERNEL,
                              UNIT_STATS, BANDS, halo=10, block_patches=2)  # fmt: skip
