"""The Keras layers of this project's saved models that Keras itself lacks.

Each is registered under the ``dam_detection`` package, so a ``.keras`` file that uses one loads
in safe mode (no code is deserialised) once this module is imported: the model builders, the
batch-norm folding every prediction goes through and Dask scan workers all import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
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
