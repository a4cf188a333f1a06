"""Test-time augmentation: a heatmap averaged over the flips and transposes the FCN trained on.

The FCN learnt with flips and quarter turns (``train.augmentation``), so each of the square's
eight symmetries shows it the same land in a pose it knows. Predicting several of them and
mapping each heatmap back before averaging keeps what they agree on (a wall across a valley) and
damps what only one pose fires on. A fully convolutional model keeps the height and width of
its input, so every pose of a block gives a heatmap of that block; transposed poses swap height
and width, which a fully convolutional model accepts.

``views`` is how many poses: 1 (the image as it is), 2 (and its half turn), 4 (and both flips)
or 8 (and the four transposed poses). The cost is ``views`` predictions of every block.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Predicts a batch ``(B, H, W, C)`` into ``(B, H, W)`` or ``(B, H, W, 1)`` scores.
Predict = Callable[[np.ndarray], np.ndarray]

#: The allowed numbers of poses (``detection.views``).
VIEW_COUNTS = (1, 2, 4, 8)

#: Each pose as (transpose rows and columns first, then flip these of the axes 1 and 2). The
#: first ``n`` poses form a group, so averaging over them treats no direction differently.
_POSES: tuple[tuple[bool, tuple[int, ...]], ...] = (
    (False, ()),
    (False, (1, 2)),
    (False, (1,)),
    (False, (2,)),
    (True, ()),
    (True, (1, 2)),
    (True, (1,)),
    (True, (2,)),
)


def _pose(batch: np.ndarray, transpose: bool, flips: tuple[int, ...]) -> np.ndarray:
    out = np.swapaxes(batch, 1, 2) if transpose else batch
    return np.flip(out, flips) if flips else out


def _unpose(scores: np.ndarray, transpose: bool, flips: tuple[int, ...]) -> np.ndarray:
    out = np.flip(scores, flips) if flips else scores
    return np.swapaxes(out, 1, 2) if transpose else out


def averaged_over_views(predict: Predict, views: int) -> Predict:
    """``predict`` averaged over the first ``views`` poses of each batch.

    Args:
        predict: The model's prediction of a batch.
        views: 1, 2, 4 or 8 (:data:`VIEW_COUNTS`); 1 returns ``predict`` itself.

    Returns:
        A function of the same contract, returning float32 scores.

    Raises:
        ValueError: If ``views`` is not one of :data:`VIEW_COUNTS`.
    """
    if views not in VIEW_COUNTS:
        raise ValueError(f"detection.views must be one of {VIEW_COUNTS}, got {views}")
    if views == 1:
        return predict

    def averaged(batch: np.ndarray) -> np.ndarray:
        total: np.ndarray | None = None
        # One pose at a time: memory stays that of one prediction, whatever ``views``.
        for transpose, flips in _POSES[:views]:
            posed = np.ascontiguousarray(_pose(batch, transpose, flips))
            scores = _unpose(np.asarray(predict(posed), dtype=np.float32), transpose, flips)
            total = scores.copy() if total is None else total + scores
        assert total is not None
        return total / np.float32(views)

    return averaged
