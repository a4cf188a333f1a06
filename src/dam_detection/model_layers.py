"""The Keras layers of this project's saved models that Keras itself lacks.

Each is registered under the ``dam_detection`` package, so a ``.keras`` file that uses one loads
in safe mode (no code is deserialised) once this module is imported: the model builders, the
batch-norm folding every prediction goes through and Dask scan workers all import it.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@keras.saving.register_keras_serializable(package="dam_detection")
class DilatedConv2D(layers.Conv2D):
    """A ``Conv2D`` whose dilated convolution runs as TensorFlow's own dilated kernel.

    Keras calls ``tf.nn.convolution``, which wraps every dilated convolution in
    ``space_to_batch`` / ``batch_to_space`` and so copies its input and output twice; TensorFlow's
    ``Conv2D`` kernel (oneDNN on x86) takes the dilations itself. Same arithmetic, equal within
    float32 rounding (tests/test_model_layers.py); on the default FCN's shapes a training step is
    about 1.5x faster on a CPU (benchmarks/results_train.md).
    """

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        """The convolution of ``inputs`` with ``kernel`` (the direct kernel when dilated)."""
        if self.dilation_rate == (1, 1) or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        return tf.nn.conv2d(
            inputs, kernel, self.strides, self.padding.upper(), dilations=self.dilation_rate
        )


@keras.saving.register_keras_serializable(package="dam_detection")
class FusedBatchNormalization(layers.BatchNormalization):
    """A ``BatchNormalization`` that trains with TensorFlow's fused kernel.

    Keras 3 normalises with separate moment, subtract, scale and shift ops (each a pass over the
    feature map, forward and backward); the fused kernel does it in one, about 3x faster on the
    FCN's 16-channel maps. Inference (and any case the fused kernel does not cover: a mask,
    renormalisation, an axis other than the last) is Keras' own. The moving statistics are
    updated as Keras updates them, with the batch's plain variance (the fused kernel reports it
    with Bessel's correction, which is taken off again).
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
