"""Figures a person looks at after training: curves, ROC/PR, confusion matrix, worst errors.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot global state) and returned for
the catalog's ``MatplotlibDataset`` to write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dam_detection.bands import RGB_BANDS
from dam_detection.pipelines.train.metrics import pr_curve, roc_curve


def training_curves(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Loss (train and validation) and learning rate per epoch, one column per model."""
    figure = Figure(figsize=(5 * max(len(histories), 1), 6.5), layout="constrained")
    axes = figure.subplots(2, max(len(histories), 1), squeeze=False)
    for column, (name, history) in enumerate(histories.items()):
        loss_axis, rate_axis = axes[0, column], axes[1, column]
        for key, values in history.items():
            if key.endswith("loss"):
                # None (an epoch without validation) becomes a gap in the curve.
                points = np.array(values, dtype=float)
                loss_axis.plot(np.arange(1, len(points) + 1), points, label=key)
        loss_axis.set(title=name, xlabel="epoch", ylabel="loss")
        loss_axis.legend()
        rate = history.get("learning_rate", [])
        rate_axis.plot(np.arange(1, len(rate) + 1), rate)
        rate_axis.set(xlabel="epoch", ylabel="learning rate", yscale="log")
    return figure


def roc_pr_curves(scored: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """ROC and precision-recall curves on the test split for each ``name: (labels, scores)``."""
    figure = Figure(figsize=(11, 5), layout="constrained")
    roc_axis, pr_axis = figure.subplots(1, 2)
    for name, (labels, scores) in scored.items():
        roc = roc_curve(labels, scores)
        roc_axis.plot(roc["fpr"], roc["tpr"], label=name)
        pr = pr_curve(labels, scores)
        pr_axis.step(pr["recall"], pr["precision"], where="post", label=name)
    roc_axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc_axis.set(title="ROC (test)", xlabel="false positive rate", ylabel="true positive rate")
    pr_axis.set(title="Precision-recall (test)", xlabel="recall", ylabel="precision")
    for axis in (roc_axis, pr_axis):
        axis.set(xlim=(0, 1), ylim=(0, 1.02))
        axis.legend(loc="lower right" if axis is roc_axis else "lower left")
    return figure


def confusion_matrices(matrices: Mapping[str, Mapping[str, int]]) -> Figure:
    """One 2 x 2 confusion matrix per ``name: {"tp", "fp", "tn", "fn"}``."""
    figure = Figure(figsize=(4.5 * max(len(matrices), 1), 4), layout="constrained")
    axes = figure.subplots(1, max(len(matrices), 1), squeeze=False)[0]
    for axis, (name, counts) in zip(axes, matrices.items(), strict=False):
        grid = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
        axis.imshow(grid, cmap="Blues")
        for (row, column), value in np.ndenumerate(grid):
            colour = "white" if value > grid.max() / 2 else "black"
            axis.text(column, row, str(value), ha="center", va="center", color=colour)
        axis.set(
            title=name,
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["not dam", "dam"],
            yticklabels=["not dam", "dam"],
            xlabel="predicted",
            ylabel="true",
        )
    return figure


def to_rgb(images: np.ndarray, bands: Sequence[str], band_stats: Mapping[str, Any]) -> np.ndarray:
    """Normalised ``(N, H, W, C)`` crops back to displayable ``(N, H, W, 3)`` RGB in [0, 1].

    Undoes the normalisation, then stretches each band between its train-split 1st and 99th
    percentiles (display only). Without all of B4, B3, B2 the first band is shown in grey.
    """
    stats = band_stats.get("bands", band_stats)
    chosen = [bands.index(b) for b in RGB_BANDS] if set(RGB_BANDS) <= set(bands) else [0, 0, 0]
    channels = []
    for index in chosen:
        entry = stats[bands[index]]
        values = images[..., index] * max(float(entry["std"]), 1e-6) + float(entry["mean"])
        low, high = float(entry.get("p01", entry["min"])), float(entry.get("p99", entry["max"]))
        channels.append(np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0))
    return np.stack(channels, axis=-1)


def error_gallery(
    rgb: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    kinds: Sequence[str],
    threshold: float,
    per_row: int = 8,
) -> Figure:
    """The hardest test patches as RGB crops: the highest-scored non-dams (false positives first)
    and the lowest-scored dams (false negatives first), titled with kind, score and ``FP``/``FN``
    where the threshold gets them wrong. Shown even when there are no errors: they are where the
    next errors will come from.
    """
    labels, scores = np.asarray(labels).ravel(), np.asarray(scores).ravel()
    negatives, positives = np.flatnonzero(labels < 0.5), np.flatnonzero(labels > 0.5)
    rows = {
        "non-dams, highest scores": negatives[np.argsort(-scores[negatives])][:per_row],
        "dams, lowest scores": positives[np.argsort(scores[positives])][:per_row],
    }
    figure = Figure(figsize=(1.6 * per_row, 4.2), layout="constrained")
    axes = figure.subplots(2, per_row, squeeze=False)
    for row, (title, picks) in enumerate(rows.items()):
        wrong = int(np.sum((scores[picks] >= threshold) == (row == 0)))
        axes[row, 0].set_ylabel(f"{title}\n({wrong} wrong)", fontsize=8)
        for column in range(per_row):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(picks):
                pick = picks[column]
                error = (scores[pick] >= threshold) != (labels[pick] > 0.5)
                mark = (" FP" if row == 0 else " FN") if error else ""
                axis.imshow(rgb[pick])
                axis.set_title(f"{kinds[pick]} {scores[pick]:.2f}{mark}", fontsize=8)
            else:
                axis.set_frame_on(False)
    figure.suptitle(f"Hardest test patches (threshold {threshold:.3f})")
    return figure
