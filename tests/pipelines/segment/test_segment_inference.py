"""Batch normalisation folded into the convolutions for prediction: the same outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from dam_detection.pipelines.segment.inference import fold_batch_norm, foldable_pairs
from dam_detection.pipelines.train.models import dilated_fcn

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")


def trained_looking(model: keras.Model, seed: int = 0) -> keras.Model:
    """Normalisation statistics far from the initial ones, as training leaves them."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.set_weights([
                rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.2, shape),
                rng.normal(0, 0.2, shape), rng.uniform(0.3, 2.0, shape),
            ])  # fmt: skip
    return model


@pytest.mark.parametrize("stem_stride", [1, 2])
def test_folded_fcn_predicts_the_same_without_normalisation_layers(stem_stride):
    keras.utils.set_random_seed(2)
    model = trained_looking(dilated_fcn(BANDS, width=8, dilations=(1, 2), stem_stride=stem_stride))
    norms = sum(isinstance(layer, layers.BatchNormalization) for layer in model.layers)
    folded = fold_batch_norm(model)
    assert len(foldable_pairs(model)) == norms  # every one follows a convolution alone
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in folded.layers)
    images = np.random.default_rng(3).normal(0, 1, (2, 41, 56, len(BANDS))).astype(np.float32)
    np.testing.assert_allclose(
        folded.predict_on_batch(images), model.predict_on_batch(images), atol=1e-5
    )
    # The trained model itself is untouched.
    assert sum(isinstance(layer, layers.BatchNormalization) for layer in model.layers) == norms


def test_a_convolution_feeding_more_than_the_normalisation_is_left_alone():
    inputs = keras.Input((None, None, 3))
    conv = layers.Conv2D(4, 3, padding="same", name="shared")(inputs)
    normed = layers.BatchNormalization(name="norm")(conv)
    outputs = layers.Add()([normed, conv])  # the raw convolution is used again
    model = trained_looking(keras.Model(inputs, outputs))
    assert foldable_pairs(model) == {}
    images = np.random.default_rng(1).normal(0, 1, (1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(
        fold_batch_norm(model).predict_on_batch(images), model.predict_on_batch(images)
    )
