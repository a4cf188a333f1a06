"""Prediction with crop and stitching: exact maps, no seams, mixer mismatches surface."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dam_detection.detection.settings import DetectionSettings
from dam_detection.mixer import MixerError
from dam_detection.model_metadata import model_metadata
from dam_detection.pipelines.segment.nodes import (
    heatmap_rasters,
    predict_heatmaps,
    prediction_exports,
)
from dam_detection.pipelines.segment.predict import batched, predict_scene
from dam_detection.pipelines.segment.settings import SegmentSettings
from dam_detection.pipelines.segment.sliding import slide_classifier
from tests.pipelines.segment.scenes import (
    BANDS,
    KERNEL,
    MIXER,
    UNIT_STATS,
    buffered_patches,
    padded_mosaic,
    tiny_fcn,
    write_scene,
)
from tests.settings import base_settings

DETECTION = base_settings(DetectionSettings, "detection")
HALF_X, HALF_Y = KERNEL[0] // 2, KERNEL[1] // 2
CORE = np.s_[HALF_Y : HALF_Y + MIXER.height_px, HALF_X : HALF_X + MIXER.width_px]


#: What train would write beside the position model (a 1 x 1 convolution).
FCN_METADATA = model_metadata(
    "fcn", BANDS, 16, receptive_field_px=1, input_size_px=None, weights_sha256="f" * 64
)


def _segment(**overrides: object) -> SegmentSettings:
    return base_settings(SegmentSettings, "segment", **overrides)


def position_code(shape: tuple[int, int]) -> np.ndarray:
    """A different value at (almost) every pixel, exactly representable in float16."""
    rows, cols = np.indices(shape)
    return ((rows * 37 + cols * 11) % 1024 / 1024).astype(np.float32)


def first_channel_model() -> keras.Model:
    """Outputs band 0 unchanged: a 1 x 1 convolution with weight 1, bias 0 (exact in float32)."""
    inputs = keras.Input((None, None, len(BANDS)))
    layer = keras.layers.Conv2D(1, 1, use_bias=False)
    outputs = layer(inputs)
    layer.set_weights([np.eye(len(BANDS), 1, dtype=np.float32).reshape(1, 1, len(BANDS), 1)])
    return keras.Model(inputs, outputs)


def test_position_model_stitches_to_the_exact_map(tmp_path):
    padded = padded_mosaic()
    padded[..., 0] = position_code(padded.shape[:2])
    scene = write_scene(tmp_path, "grid", padded)

    maps = predict_heatmaps({"grid": scene}, first_channel_model(), FCN_METADATA,
                            {"bands": UNIT_STATS}, _segment(batch_size=3), DETECTION)  # fmt: skip

    heatmap = maps["grid"].probability
    assert heatmap.shape == (MIXER.height_px, MIXER.width_px)
    np.testing.assert_array_equal(heatmap, padded[CORE][..., 0].astype(np.float16))
    # A per-pixel model sees each pixel in all eight poses: averaged, the very same map.
    eight = predict_heatmaps({"grid": scene}, first_channel_model(), FCN_METADATA,
                             {"bands": UNIT_STATS}, _segment(batch_size=3),
                             DETECTION.model_copy(update={"views": 8}))  # fmt: skip
    np.testing.assert_array_equal(eight["grid"].probability, heatmap)
    assert maps["grid"].preview is not None and maps["grid"].preview.dtype == np.uint8


def test_convolutional_model_has_no_seams():
    """Each patch is predicted with its buffer and cropped: the stitched map equals the model
    run on the whole mosaic, including the rows and columns next to patch edges."""
    model = tiny_fcn()
    padded = padded_mosaic(seed=3)
    whole = model.predict_on_batch(padded[None])[0, ..., 0][CORE]
    patches = buffered_patches(padded, MIXER, KERNEL)

    score_map = predict_scene(model.predict_on_batch, batched(patches, 2), MIXER, KERNEL,
                              UNIT_STATS, BANDS)  # fmt: skip

    np.testing.assert_allclose(score_map.probability.astype(np.float32), whole, atol=1e-3)
    seam_rows = score_map.probability[MIXER.patch_height - 1 : MIXER.patch_height + 1]
    assert (
        np.abs(
            seam_rows.astype(np.float32) - whole[MIXER.patch_height - 1 : MIXER.patch_height + 1]
        ).max()
        < 1e-3
    )  # noqa: E501
    # Without the crop the edge pixels would see zero padding instead of the neighbour's pixels.
    lone = model.predict_on_batch(padded[None, CORE[0], CORE[1]][:, :64, :64])[0, ..., 0]
    assert np.abs(lone[-1] - whole[63, :64]).max() > 1e-3


@pytest.mark.parametrize(
    ("patches", "message"),
    [
        (lambda p: p[:-1], "hold 3 patches"),
        (lambda p: p + p[:1], "more patches than"),
        (lambda p: [x[:-2] for x in p], "shape"),
    ],
)
def test_stitching_rejects_patches_that_disagree_with_the_mixer(patches, message):
    good = buffered_patches(padded_mosaic(), MIXER, KERNEL)
    with pytest.raises(MixerError, match=message):
        predict_scene(first_channel_model().predict_on_batch, batched(patches(good), 1), MIXER,
                      KERNEL, UNIT_STATS, BANDS)  # fmt: skip


def test_mixer_mismatch_in_the_files_surfaces_through_the_node(tmp_path):
    scene = write_scene(tmp_path, "short", padded_mosaic(), drop_last=True)
    with pytest.raises(MixerError, match="totalPatches 4"):
        predict_heatmaps({"short": scene}, first_channel_model(), FCN_METADATA,
                         {"bands": UNIT_STATS}, _segment(batch_size=2), DETECTION)  # fmt: skip


def centre_value_classifier(crop: int) -> keras.Model:
    """Scores a crop by the mean of band 0 over it: checks every pixel of the context."""
    inputs = keras.Input((crop, crop, len(BANDS)))
    band = first_channel_model()(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(band)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("stride", [1, 5, 16])
def test_sliding_classifier_sees_the_right_context(stride):
    """A crop wider than the export buffer takes its context from neighbouring patch rows; past
    the exported area the nearest exported pixel repeats."""
    crop = 41  # half 20 > the 8 px buffer
    padded = padded_mosaic(seed=5)
    model = centre_value_classifier(crop)
    grid = slide_classifier(
        model.predict_on_batch, batched(buffered_patches(padded, MIXER, KERNEL), 3), MIXER,
        KERNEL, UNIT_STATS, BANDS, crop_size=crop, stride=stride, batch_size=256,
    )  # fmt: skip
    extra = crop // 2 - HALF_X
    extended = np.pad(padded[..., 0], extra, mode="edge")
    centres = stride // 2 + np.arange(grid.probability.shape[0]) * stride
    expected = np.array(
        [[extended[r + extra + HALF_Y - 20 : r + extra + HALF_Y + 21,
                   c + extra + HALF_X - 20 : c + extra + HALF_X + 21].mean() for c in centres]
         for r in centres]
    )  # fmt: skip
    assert grid.probability.shape == (len(centres), len(centres))
    np.testing.assert_allclose(grid.probability.astype(np.float32), expected, atol=1e-3)


def test_bands_are_checked_by_name_and_order_before_predicting(tmp_path):
    scene = write_scene(tmp_path, "grid", padded_mosaic())
    reordered = _segment(bands=list(reversed(BANDS)))  # same count, another order
    with pytest.raises(ValueError, match="same bands in another order.*set segment.bands to"):
        predict_heatmaps({"grid": scene}, first_channel_model(), FCN_METADATA,
                         {"bands": UNIT_STATS}, reordered, DETECTION)  # fmt: skip
    wide = {**FCN_METADATA, "receptive_field_px": 127}
    with pytest.raises(ValueError, match="scene grid: patches overlap by .* needs 63"):
        predict_heatmaps({"grid": scene}, first_channel_model(), wide,
                         {"bands": UNIT_STATS}, _segment(), DETECTION)  # fmt: skip


def test_non_finite_pixels_are_no_data_counted_and_never_reach_an_output(tmp_path):
    padded = padded_mosaic()
    padded[HALF_Y + 10 : HALF_Y + 20, HALF_X + 5 : HALF_X + 9, 1] = np.nan  # 40 mosaic pixels
    padded[HALF_Y + 30, HALF_X + 30, 0] = np.inf  # and one more
    scene = write_scene(tmp_path, "torn", padded)
    maps = predict_heatmaps({"torn": scene}, first_channel_model(), FCN_METADATA,
                            {"bands": UNIT_STATS}, _segment(), DETECTION)  # fmt: skip
    score_map = maps["torn"]
    assert score_map.non_finite_pixels == 41
    assert np.isfinite(score_map.probability.astype(np.float32)).all()
    raster = heatmap_rasters(maps)["torn"]()
    assert np.isfinite(raster.data.astype(np.float32)).all()
    assert int((raster.data == raster.nodata).sum()) == 41  # the GeoTIFF's no-data value
    upload = prediction_exports(maps, _segment())["torn"]
    assert all(np.isfinite(band.astype(np.float32)).all() for band in upload.bands.values())
