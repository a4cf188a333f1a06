"""Mixed precision: requested where no GPU is, refused with a warning; outputs always float32."""

from __future__ import annotations

import logging

import keras
import pytest
import tensorflow as tf

from dam_detection.pipelines.train.models import build_classifier, dilated_fcn
from dam_detection.pipelines.train.training import configure_precision

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")


@pytest.fixture(autouse=True)
def _float32_afterwards():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is present")
def test_mixed_precision_without_a_gpu_trains_in_float32_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        assert configure_precision(True) == "float32"
    assert "no GPU" in caplog.text
    assert keras.mixed_precision.global_policy().name == "float32"
    assert configure_precision(False) == "float32"


def test_under_a_mixed_policy_the_models_still_answer_in_float32():
    # What a GPU run builds: float16 compute inside, float32 probabilities out.
    keras.mixed_precision.set_global_policy("mixed_float16")
    fcn = dilated_fcn(BANDS, width=4, dilations=(1,))
    classifier = build_classifier("residual_cnn", BANDS, 24, width=4, dropout=0.0)
    for model in (fcn, classifier):
        assert model.layers[1].compute_dtype == "float16"
        assert model.outputs[0].dtype == "float32"
