"""The faster layers compute what Keras' own layers compute, the relief layer sees no absolute
height, and all load back in safe mode."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from dam_detection import model_layers
from dam_detection.model_layers import DilatedConv2D, FusedBatchNormalization, LocalRelief


def _values_and_gradients(layer: layers.Layer, images: np.ndarray, training: bool) -> list:
    inputs = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=training)
        loss = tf.reduce_sum(outputs * tf.sin(outputs))  # a gradient that varies per pixel
    grads = tape.gradient(loss, [inputs, *layer.trainable_weights])
    return [outputs.numpy()] + [g.numpy() for g in grads]


def _assert_close(ours: list, keras_own: list, rtol: float) -> None:
    for mine, theirs in zip(ours, keras_own, strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max())


@pytest.mark.parametrize("avx512", [True, False])
@pytest.mark.parametrize(("dilation", "batch", "training"), [(2, 2, True), (5, 1, False)])
def test_dilated_convolution_equals_keras_conv2d_with_its_gradients(
    monkeypatch, avx512, dilation, batch, training
):
    # each kernel choice (direct or Keras' space-to-batch path) computes the same
    monkeypatch.setattr(model_layers, "onednn_has_avx512", lambda: avx512)
    images = np.random.default_rng(dilation).normal(size=(batch, 23, 30, 3)).astype(np.float32)
    config = {"filters": 4, "kernel_size": 3, "dilation_rate": dilation, "padding": "same",
              "activation": "relu"}  # fmt: skip
    ours, theirs = DilatedConv2D(**config), layers.Conv2D(**config)
    ours.build(images.shape)
    theirs.build(images.shape)
    ours.bias.assign(np.linspace(-1, 1, 4, dtype=np.float32))
    theirs.set_weights(ours.get_weights())
    _assert_close(
        _values_and_gradients(ours, images, training),
        _values_and_gradients(theirs, images, training),
        1e-5,
    )


def test_the_default_fcn_trains_where_oneDNN_is_off_as_on_most_AVX2_CPUs():
    # TensorFlow turns oneDNN on by default only on AVX-512-class CPUs; without it its Conv2D
    # kernel has no gradient for a dilated convolution, so the layer must train on Keras' path
    script = textwrap.dedent(
        """
        import json, keras, numpy as np, yaml
        from dam_detection import model_layers
        from dam_detection.pipelines.train.models import fcn_from_settings
        fcn = yaml.safe_load(open("conf/base/parameters_train.yml"))["train"]["fcn"]
        keras.utils.set_random_seed(0)
        model = fcn_from_settings(("B2", "B3", "B4", "NDWI", "AVE"), fcn)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        rng = np.random.default_rng(0)
        images = rng.normal(size=(2, 48, 48, 5)).astype(np.float32)
        target = (rng.uniform(size=(2, 48, 48, 1)) > 0.9).astype(np.float32)
        before = [w.copy() for w in model.get_weights()]
        loss = float(model.train_on_batch(images, target))
        moved = sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
        print(json.dumps({"trains": model_layers.dilated_kernel_trains(), "loss": loss,
                          "moved": moved, "weights": len(before)}))
        """
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["trains"] is False  # Eigen's kernel: the layer knows it cannot use it
    assert np.isfinite(report["loss"]) and report["moved"] > report["weights"] // 2


def test_the_project_asks_for_oneDNN_so_the_fast_dilated_kernel_trains_on_any_x86_cpu():
    # TensorFlow's own default is oneDNN off on AVX2-only CPUs (2.5x slower FCN steps there);
    # importing the package turns it on unless the user said otherwise
    script = (
        "import os; from dam_detection import model_layers; "
        "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], model_layers.dilated_kernel_trains())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-c", script], env=env | {"TF_CPP_MIN_LOG_LEVEL": "2"},
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["1", "True"]


@pytest.mark.parametrize("gpu", [False, True])
def test_fused_normalisation_trains_and_infers_as_keras_batch_normalization(monkeypatch, gpu):
    # with a GPU visible the layer trains on Keras' own path (the fused gradient is not
    # deterministic there); either way it computes what Keras computes
    monkeypatch.setattr(model_layers, "gpus_visible", lambda: gpu)
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(4, 9, 11, 6)) * 3 + 2).astype(np.float32)
    ours, theirs = FusedBatchNormalization(momentum=0.8), layers.BatchNormalization(momentum=0.8)
    for layer in (ours, theirs):
        layer.build(images.shape)
        layer.gamma.assign(rng.uniform(0.5, 2, 6).astype(np.float32))
    theirs.set_weights(ours.get_weights())
    _assert_close(
        _values_and_gradients(ours, images, True), _values_and_gradients(theirs, images, True), 1e-5
    )
    # the moving statistics moved the same way, so inference agrees too
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), 1e-5)
    _assert_close(
        _values_and_gradients(ours, images, False),
        _values_and_gradients(theirs, images, False),
        1e-5,
    )


def test_a_model_of_the_layers_loads_back_in_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 2))
    x = LocalRelief(channel=1, window=3, gain=2.0)(inputs)
    x = DilatedConv2D(3, 3, dilation_rate=2, padding="same", use_bias=False)(x)
    model = keras.Model(inputs, FusedBatchNormalization()(x))
    images = np.random.default_rng(1).normal(size=(1, 12, 12, 2)).astype(np.float32)
    model(images, training=True)  # moving statistics away from their start
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert [type(layer) for layer in loaded.layers[1:]] == [
        LocalRelief,
        DilatedConv2D,
        FusedBatchNormalization,
    ]
    assert (loaded.layers[1].window, loaded.layers[1].gain) == (3, 2.0)
    np.testing.assert_array_equal(loaded.predict_on_batch(images), model.predict_on_batch(images))


def _relief_by_hand(height: np.ndarray, window: int, gain: float, void: float) -> np.ndarray:
    """Height minus the mean of the window's pixels that lie inside the image and have a
    height, times gain; 0 where the pixel has none."""
    half, (rows, cols) = window // 2, height.shape
    valid = (height != 0.0) & (height != void)
    out = np.zeros_like(height)
    for r in range(rows):
        for c in range(cols):
            box = np.s_[max(r - half, 0) : r + half + 1, max(c - half, 0) : c + half + 1]
            if valid[r, c]:
                out[r, c] = (height[r, c] - height[box][valid[box]].mean()) * gain
    return out


def test_relief_is_height_above_the_surroundings_whatever_the_land_level():
    images = np.random.default_rng(2).normal(size=(2, 11, 9, 3)).astype(np.float32)
    images[0, 2:4, :, 1] = -5.0  # an elevation void stripe (raw 0, normalised)
    images[1, :, :3, :] = 0.0  # masked pixels past a scene edge: every channel 0
    layer = LocalRelief(channel=1, window=5, gain=3.0, no_data=(0.0, -5.0))
    out = layer(images).numpy()
    np.testing.assert_array_equal(out[..., [0, 2]], images[..., [0, 2]])  # others untouched
    for image, relief in zip(images, out, strict=True):
        np.testing.assert_allclose(relief[..., 1], _relief_by_hand(image[..., 1], 5, 3.0, -5.0),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip
    assert np.abs(out[0, 2:4, :, 1]).max() == 0.0 and np.abs(out[1, :, :3, 1]).max() == 0.0
    raised = images.copy()
    land = (images[..., 1] != 0.0) & (images[..., 1] != -5.0)
    raised[..., 1][land] += 7.0  # the whole land 7 units higher: the same relief
    np.testing.assert_allclose(layer(raised).numpy(), out, atol=1e-4)
    with pytest.raises(ValueError, match="odd"):
        LocalRelief(channel=1, window=4, gain=1.0)
