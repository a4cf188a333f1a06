"""BestInBagLoss: a dam point's bag is judged by its best pixel, everything else is a negative."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from dam_detection.model_losses import BestInBagLoss, disk_pixels, fcn_loss


def test_disk_pixels_counts_pixel_centres_within_the_radius():
    assert disk_pixels(0.0) == 1
    assert disk_pixels(1.0) == 5
    assert disk_pixels(2.0) == 13


def test_the_best_pixel_of_the_bag_carries_the_positive_and_the_rest_of_the_bag_nothing():
    bag = np.zeros((1, 3, 3, 1), np.float32)
    bag[0, 0:2, 0:2, 0] = 1.0  # a bag of four pixels in the top-left corner
    p = np.full((1, 3, 3, 1), 0.1, np.float32)
    p[0, 0, 0, 0], p[0, 1, 1, 0] = 0.6, 0.3  # 0.6 is the bag's best; 0.3 and two 0.1 idle
    p[0, 2, 2, 0] = 0.8  # a false alarm outside the bag
    loss = BestInBagLoss(positive_pixels=13.0)
    per_pixel = loss.call(tf.constant(bag), tf.constant(p)).numpy()[0]
    expected = np.zeros((3, 3))
    expected[0, 0] = -13.0 * np.log(0.6)
    outside = bag[0, ..., 0] == 0
    expected[outside] = -np.log(1.0 - p[0, ..., 0][outside])
    np.testing.assert_allclose(per_pixel, expected, rtol=1e-5)
    # Keras applies the per-pixel sample weights and averages over the batch's pixels.
    weights = np.full((1, 3, 3, 1), 2.0, np.float32)
    total = float(loss(tf.constant(bag), tf.constant(p), sample_weight=tf.constant(weights)))
    assert total == pytest.approx(2.0 * expected.sum() / 9, rel=1e-5)


def test_its_gradient_raises_only_the_best_pixel_of_the_bag():
    bag = tf.constant([[[[1.0], [1.0], [0.0]]]])
    p = tf.Variable([[[[0.6], [0.3], [0.2]]]])
    with tf.GradientTape() as tape:
        value = BestInBagLoss(positive_pixels=1.0)(bag, p)
    gradient = tape.gradient(value, p).numpy().ravel()
    assert gradient[0] < 0 and gradient[1] == 0 and gradient[2] > 0


def test_a_crop_without_a_bag_is_all_negatives():
    p = tf.fill([2, 4, 4, 1], 0.25)
    value = BestInBagLoss(positive_pixels=13.0)(tf.zeros([2, 4, 4, 1]), p)
    assert float(value) == pytest.approx(-np.log(0.75), rel=1e-6)


def test_fcn_loss_follows_the_point_target():
    assert fcn_loss({"point_target": "disk", "target_radius": 2.0}) == "binary_crossentropy"
    chosen = fcn_loss({"point_target": "bag", "target_radius": 2.0})
    assert isinstance(chosen, BestInBagLoss) and chosen.positive_pixels == 13.0
    assert BestInBagLoss.from_config(chosen.get_config()).positive_pixels == 13.0
