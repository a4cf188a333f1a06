"""The Keras layers of this project's saved models that Keras itself lacks, and the FCN's loss.

Each is registered under the ``dam_detection`` package, so a ``.keras`` file that uses one loads
in safe mode (no code is deserialised) once this module is imported: the model builders, the
batch-norm folding every prediction goes through and Dask scan workers all import it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="dam_detection")
class CropToReference(layers.Layer):
    """Crops its first input to the height and width of its second.

    A strided stem rounds odd sizes up (a 257-pixel patch becomes 129 cells, 258 pixels again
    after the head); cropping gives the FCN back any input's exact height and width.
    """

    def call(self, inputs: Sequence[keras.KerasTensor]) -> keras.KerasTensor:
        """``inputs[0]`` cut to ``inputs[1]``'s rows and columns."""
        x, reference = inputs
        shape = keras.ops.shape(reference)
        return x[:, : shape[1], : shape[2]]

    def compute_output_shape(self, input_shape: Sequence[tuple]) -> tuple:
        """The first input's batch and channels with the reference's height and width."""
        x, reference = input_shape
        return (x[0], reference[1], reference[2], x[3])


@functools.cache
def onednn_has_avx512() -> bool:
    """Whether TensorFlow's oneDNN kernels run with AVX-512 here: the CPU has it (Linux's
    ``/proc/cpuinfo``) and ``ONEDNN_MAX_CPU_ISA`` does not cap oneDNN below it.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if cap not in ("ALL", "DEFAULT") and not cap.startswith(("AVX512", "AVX10")):
        return False
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@functools.cache
def dilated_kernel_trains() -> bool:
    """Whether TensorFlow's own ``Conv2D`` kernel has a gradient for a dilated convolution here.

    oneDNN's (x86) and cuDNN's (NVIDIA GPUs) have one; Eigen's, TensorFlow's CPU kernels where
    oneDNN is off, has none ("Current CPU implementations do not yet support dilation rates
    larger than 1"). TensorFlow turns oneDNN on by default only on CPUs with AVX-512-class
    features, so on most AVX2-only CPUs (``TF_ENABLE_ONEDNN_OPTS`` unset or ``0``) only Keras'
    space-to-batch path trains. Answered by running both gradient kernels once, eagerly, on a
    5 x 5 image (the ops themselves: ``init_scope`` pauses gradient tapes).
    """
    options = {"strides": [1, 1, 1, 1], "padding": "SAME", "dilations": [1, 2, 2, 1]}
    with tf.init_scope():  # eager even when called while a training function is traced
        image, kernel = tf.ones((1, 5, 5, 1)), tf.ones((3, 3, 1, 1))
        try:
            tf.raw_ops.Conv2DBackpropInput(
                input_sizes=[1, 5, 5, 1], filter=kernel, out_backprop=image, **options
            )
            tf.raw_ops.Conv2DBackpropFilter(
                input=image, filter_sizes=[3, 3, 1, 1], out_backprop=image, **options
            )
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
            return False
    return True


@functools.cache
def gpus_visible() -> bool:
    """Whether TensorFlow places work on a GPU in this process."""
    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="dam_detection")
class DilatedConv2D(layers.Conv2D):
    """A ``Conv2D`` whose dilated convolution runs on TensorFlow's own dilated kernel where
    that is the faster one.

    Keras calls ``tf.nn.convolution``, which wraps every dilated convolution in
    ``space_to_batch`` / ``batch_to_space`` and so copies its input and output twice; TensorFlow's
    ``Conv2D`` kernel (oneDNN on x86) takes the dilations itself. Same arithmetic, equal within
    float32 rounding (tests/test_model_layers.py). Measured (benchmarks/model_layers.py): the
    direct kernel makes a training step of the default FCN 2.2x faster with AVX-512 and 1.35x
    with AVX2 only, and predicting one large image 2x faster with AVX-512, but 3.3x *slower* with
    AVX2 only (oneDNN's AVX2 kernel for a dilated convolution of a single image). So it is used
    in training, for batches of more than one image, and with AVX-512; Keras' path otherwise,
    and always where TensorFlow's kernel cannot train (``dilated_kernel_trains``: oneDNN off).
    """

    def call(self, inputs: Any, training: Any = None) -> Any:
        """The layer's output, on the kernel that is faster for this call."""
        batch = inputs.shape[0]
        direct = (
            self.dilation_rate != (1, 1)
            and self.data_format == "channels_last"
            and dilated_kernel_trains()
        )
        if not (direct and (training or (batch is not None and batch > 1) or onednn_has_avx512())):
            return super().call(inputs)
        outputs = tf.nn.conv2d(
            inputs, self.kernel, self.strides, self.padding.upper(), dilations=self.dilation_rate
        )
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)


@keras.saving.register_keras_serializable(package="dam_detection")
class FusedBatchNormalization(layers.BatchNormalization):
    """A ``BatchNormalization`` that trains with TensorFlow's fused kernel.

    Keras 3 normalises with separate moment, subtract, scale and shift ops (each a pass over the
    feature map, forward and backward); the fused kernel does it in one, about 3x faster on the
    FCN's 16-channel maps. Inference (and any case the fused kernel does not cover: a mask,
    renormalisation, an axis other than the last) is Keras' own, and so is training where a GPU
    is visible: there the fused kernel's gradient with respect to the offset is not deterministic
    (TensorFlow's determinism RFC), and training runs with op determinism on. The moving
    statistics are updated as Keras updates them, with the batch's plain variance (the fused
    kernel reports it with Bessel's correction, which is taken off again).
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        """Normalise ``inputs`` by the batch's moments in training, the moving ones otherwise."""
        fused = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and self.axis in (-1, len(inputs.shape) - 1)
            and len(inputs.shape) == 4
            and not gpus_visible()
        )
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        # As Keras does: normalise in float32 (float16 statistics overflow) whatever the policy.
        x = tf.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, is_training=True
        )
        count = tf.cast(tf.size(x) // channels, "float32")
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return tf.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="dam_detection")
class LocalRelief(layers.Layer):
    """Replaces one channel, the surface elevation, by its height above its surroundings.

    A dam shows in a surface model as water held above the valley below the wall, a few metres
    to tens of metres over a few pixels. The absolute height around it says nothing about a dam,
    and it differs between regions far more than any wall is high: the default scan region lies
    about 150 m below the training region, so a model that sees absolute heights meets values in
    the scan that it never saw in training. Here the elevation channel becomes the pixel's height
    minus the mean height of the ``window`` x ``window`` square around it, times ``gain``; the
    other channels pass unchanged. The output is the same wherever the whole land is raised or
    lowered.

    Pixels without a height (the channel equals one of ``no_data``, the normalised values of
    masked pixels and of elevation voids) count in no mean and get relief 0, as do pixels whose
    window holds no height at all; pixels beyond the image's edge count in no mean either. A
    void or a scene edge therefore leaves no cliff in the relief.

    Args:
        channel: Index of the elevation channel (last axis).
        window: Odd side of the square whose mean is subtracted, pixels; it widens the model's
            receptive field by ``window - 1`` (``models.receptive_field``).
        gain: Factor on the difference: the channel's normalisation divides heights by the band's
            standard deviation, so ``std / metres`` gives the output in units of ``metres``.
        no_data: Values of the channel that mean "no height here".
    """

    #: Channel values closer than this to a ``no_data`` value are no data (float32 rounding).
    NO_DATA_TOLERANCE = 1e-4

    def __init__(self, channel: int, window: int, gain: float,
                 no_data: Sequence[float] = (0.0,), **kwargs: Any) -> None:  # fmt: skip
        # Always float32: under mixed precision a void's normalised height would round off.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if window < 1 or window % 2 == 0:
            raise ValueError(f"LocalRelief window must be an odd number of pixels, got {window}")
        self.channel, self.window, self.gain = int(channel), int(window), float(gain)
        self.no_data = tuple(float(value) for value in no_data)

    def _mean_around(self, values: Any) -> Any:
        # Two one-dimensional means (exact for a square: each row mean averages as many pixels);
        # SAME padding averages only the pixels inside the image.
        values = tf.nn.avg_pool2d(values, (self.window, 1), 1, "SAME")
        return tf.nn.avg_pool2d(values, (1, self.window), 1, "SAME")

    def call(self, inputs: Any) -> Any:
        """``inputs`` with the elevation channel replaced by its local relief."""
        channel = self.channel % inputs.shape[-1]
        height = inputs[..., channel : channel + 1]
        valid = tf.ones_like(height)
        for value in self.no_data:
            valid *= tf.cast(tf.abs(height - value) > self.NO_DATA_TOLERANCE, height.dtype)
        share = self._mean_around(valid)  # both means over the same pixels: a ratio of sums
        mean = self._mean_around(height * valid) / tf.maximum(share, 1e-6)
        relief = tf.where((valid > 0) & (share > 0), (height - mean) * self.gain, 0.0)
        return tf.concat([inputs[..., :channel], relief, inputs[..., channel + 1 :]], axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Unchanged."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """The layer's settings, for saving."""
        return {**super().get_config(), "channel": self.channel, "window": self.window,
                "gain": self.gain, "no_data": list(self.no_data)}  # fmt: skip


# A loss, kept here with the layers: a model saved while compiled with it records its name, and
# loads (in safe mode) wherever this module is imported, as its layers do.
@keras.saving.register_keras_serializable(package="dam_detection")
def member_crossentropy(target: Any, heatmaps: Any) -> Any:
    """Binary cross-entropy of each member's heatmap (channel) against the one-channel target,
    averaged over the members: per pixel, so the per-pixel loss weights apply as for one FCN.
    Each member's gradient is its own loss's, divided by the number of members (which Adam's
    per-weight scaling undoes). With one member it is Keras' binary cross-entropy.
    """
    target = keras.ops.broadcast_to(target, keras.ops.shape(heatmaps))
    return keras.losses.binary_crossentropy(target, heatmaps)
