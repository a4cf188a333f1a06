"""The FCN's loss when a dam point is taken as a bag of pixels (``train.fcn.point_target: bag``).

An inventory point lies near its dam, not on its wall: a median 66 m off on the planet, some
points on the reservoir (docs/simulated_earth.md). A disk of "dam" drawn around the point asks
the network to call whatever lies there a dam, reservoir water or a field included. Read as
multiple-instance learning, the point says only that the wall crosses somewhere within
``ignore_radius`` of it: the loss asks the **best** pixel of that bag to be dam and leaves the
rest of the bag out, so the network may put its peak on the wall wherever the wall is. Every
pixel outside a bag is a negative, as with the disk.

Registered under the ``dam_detection`` package so a ``.keras`` file compiled with it loads once
this module is imported (:class:`~dam_detection.datasets.keras_model.KerasModelDataset`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

#: Probabilities are clipped this far from 0 and 1 before their logarithm, as Keras' own
#: binary cross-entropy does.
_EPSILON = 1e-7


def disk_pixels(radius: float) -> int:
    """Pixels whose centres lie within ``radius`` of a pixel centre (13 for a radius of 2)."""
    offsets = np.arange(-int(radius), int(radius) + 1)
    return int(np.sum(offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2))


@keras.saving.register_keras_serializable(package="dam_detection")
class BestInBagLoss(keras.losses.Loss):
    """Binary cross-entropy with each dam point's bag judged by its best pixel.

    ``y_true`` is 1 on the bags (the pixels within ``ignore_radius`` of a dam point) and 0
    elsewhere, as :func:`~dam_detection.pipelines.train.augmentation.point_maps` draws it; the
    sample weights are those of the disk target (a bag's pixels weigh ``positive_weight``).
    Outside the bags each pixel costs ``-log(1 - p)``. In a crop's bag the pixel with the
    highest ``p`` costs ``-log(p)`` times ``positive_pixels`` (the disk's pixel count, so a dam
    weighs in the loss what its disk did) and the others cost nothing.

    A crop holds at most one bag: the patch's own point (other listed dams are left out of
    the loss, never targets).
    """

    def __init__(self, positive_pixels: float, name: str = "best_in_bag", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.positive_pixels = float(positive_pixels)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """Per-pixel losses ``(B, H, W)``, reduced over the single channel."""
        p = tf.clip_by_value(tf.cast(y_pred, tf.float32), _EPSILON, 1.0 - _EPSILON)
        bag = tf.cast(y_true, tf.float32) > 0.5
        in_bag = tf.where(bag, p, -1.0)
        best = tf.reduce_max(in_bag, axis=[1, 2], keepdims=True)
        chosen = tf.logical_and(bag, in_bag >= best)
        positive = -tf.math.log(p) * self.positive_pixels
        negative = -tf.math.log(1.0 - p)
        losses = tf.where(chosen, positive, tf.where(bag, tf.zeros_like(p), negative))
        return tf.reduce_mean(losses, axis=-1)

    def get_config(self) -> dict[str, Any]:
        """Keras config, ``positive_pixels`` included."""
        return {**super().get_config(), "positive_pixels": self.positive_pixels}


def fcn_loss(fcn_target: Mapping[str, Any]) -> str | keras.losses.Loss:
    """The FCN's loss for ``train.fcn``'s ``point_target``.

    ``disk``: Keras' binary cross-entropy on the disk target; ``bag``: :class:`BestInBagLoss`
    with the disk's pixel count of ``target_radius``.

    Args:
        fcn_target: ``fcn_target_settings`` of ``train.fcn`` (``point_target``,
            ``target_radius``).
    """
    if fcn_target["point_target"] == "bag":
        return BestInBagLoss(disk_pixels(float(fcn_target["target_radius"])))
    return "binary_crossentropy"
