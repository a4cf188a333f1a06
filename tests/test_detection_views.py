"""Heatmaps averaged over the poses the FCN trained on (``detection.views``)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dam_detection.detection.settings import DetectionSettings
from dam_detection.detection.views import averaged_over_views
from tests.settings import base_settings


def _position_model(batch: np.ndarray) -> np.ndarray:
    """Not symmetric at all: each pixel's score depends on its column and on its content."""
    cols = np.arange(batch.shape[2], dtype=np.float32)[None, None, :, None]
    return np.tanh(batch[..., :1] * (1.0 + cols) + batch[..., 1:2])


def _dihedral_average(batch: np.ndarray) -> np.ndarray:
    """The mean over the square's eight symmetries, written with quarter turns."""
    outputs = []
    for turns in range(4):
        for flip in (False, True):
            posed = np.rot90(batch, turns, axes=(1, 2))
            posed = np.flip(posed, 2) if flip else posed
            scores = _position_model(np.ascontiguousarray(posed))
            scores = np.flip(scores, 2) if flip else scores
            outputs.append(np.rot90(scores, -turns, axes=(1, 2)))
    return np.mean(outputs, axis=0)


def test_eight_views_average_every_symmetry_mapped_back():
    batch = np.random.default_rng(0).normal(size=(2, 9, 9, 2)).astype(np.float32)
    averaged = averaged_over_views(_position_model, 8)(batch)
    assert averaged.shape == (2, 9, 9, 1) and averaged.dtype == np.float32
    np.testing.assert_allclose(averaged, _dihedral_average(batch), rtol=1e-5, atol=1e-6)


def test_two_views_add_the_half_turn():
    batch = np.random.default_rng(1).normal(size=(1, 5, 7, 2)).astype(np.float32)
    turned = np.rot90(_position_model(np.rot90(batch, 2, axes=(1, 2)).copy()), -2, axes=(1, 2))
    expected = (_position_model(batch) + turned) / 2
    np.testing.assert_allclose(averaged_over_views(_position_model, 2)(batch), expected,
                               rtol=1e-6)  # fmt: skip


def test_a_symmetric_model_is_unchanged_on_any_block_shape():
    # Per-pixel models (like an FCN's 1 x 1 head) see the same pixel in every pose.
    def per_pixel(batch: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-batch.sum(axis=-1)))

    batch = np.random.default_rng(2).normal(size=(3, 6, 11, 4)).astype(np.float32)
    for views in (2, 4, 8):
        np.testing.assert_allclose(averaged_over_views(per_pixel, views)(batch), per_pixel(batch),
                                   rtol=1e-6)  # fmt: skip


def test_one_view_is_the_model_itself_and_other_counts_are_refused():
    assert averaged_over_views(_position_model, 1) is _position_model
    with pytest.raises(ValueError, match=r"detection.views must be one of \(1, 2, 4, 8\), got 3"):
        averaged_over_views(_position_model, 3)
    with pytest.raises(ValidationError, match="views"):
        DetectionSettings(**{**base_settings(DetectionSettings, "detection").model_dump(),
                             "views": 6})  # fmt: skip
