"""Figures: the scene overlay (RGB, heatmap, detections, known dams) and precision-recall curves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
from matplotlib.figure import Figure

from dam_detection.pipelines.segment.predict import ScoreMap


def block_max(values: np.ndarray, step: int) -> np.ndarray:
    """Downsample by the maximum over ``step x step`` blocks (narrow peaks stay visible)."""
    if step == 1:
        return np.asarray(values, dtype=np.float32)
    rows, cols = values.shape
    out_rows, out_cols = -(-rows // step), -(-cols // step)
    out = np.zeros((out_rows, out_cols), dtype=np.float32)
    for r in range(out_rows):  # row by row: never a float32 copy of the whole scene
        band = np.asarray(values[r * step : (r + 1) * step], dtype=np.float32).max(axis=0)
        padded = np.pad(band, (0, out_cols * step - cols), constant_values=0)
        out[r] = padded.reshape(out_cols, step).max(axis=1)
    return out


def overlay_figure(
    score_map: ScoreMap,
    detections: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame | None,
    *,
    heatmap_floor: float = 0.1,
) -> Figure:
    """RGB scene, heatmap (transparent below ``heatmap_floor``), detections and known dams.

    Coordinates are preview pixels; detections are drawn from their mosaic ``row``/``col``.
    """
    step = score_map.preview_step
    heat = block_max(score_map.probability, step)
    # Figure, not pyplot: no global figure registry, no backend (the catalog writes the file).
    figure = Figure(figsize=(9, 9 * heat.shape[0] / max(heat.shape[1], 1) + 0.6))
    axes = figure.subplots()
    if score_map.preview is not None:
        axes.imshow(score_map.preview, interpolation="nearest")
    shown = np.ma.masked_less(heat, heatmap_floor)
    image = axes.imshow(shown, cmap="inferno", vmin=0, vmax=1, alpha=0.6, interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02, label="dam probability")
    if truth is not None and len(truth):
        col, row = to_pixels(score_map, truth)
        axes.scatter(
            col / step - 0.5, row / step - 0.5, s=120, facecolors="none", edgecolors="cyan",
            linewidths=1.5, label=f"known dams ({len(truth)})",
        )  # fmt: skip
    if len(detections):
        axes.scatter(
            detections["col"] / step - 0.5, detections["row"] / step - 0.5, s=30, marker="+",
            c="lime", linewidths=1.2, label=f"detections ({len(detections)})",
        )  # fmt: skip
    axes.set_title(f"{score_map.scene}: dam heatmap and detections")
    axes.set_axis_off()
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", fontsize=8, framealpha=0.7)
    figure.tight_layout()
    return figure


def to_pixels(score_map: ScoreMap, points: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mosaic pixel ``(col, row)`` of points (inverse of the mixer affine)."""
    projected = points.to_crs(score_map.mixer.crs)
    x_scale, x_shear, x_0, y_shear, y_scale, y_0 = score_map.mixer.affine
    inverse = np.linalg.inv(np.array([[x_scale, x_shear], [y_shear, y_scale]]))
    offsets = np.vstack([projected.geometry.x - x_0, projected.geometry.y - y_0])
    col, row = inverse @ offsets
    return col, row


def precision_recall_figure(metrics: Mapping[str, Any], tolerance_key: str) -> Figure:
    """Precision against recall over score thresholds, for each model, at one tolerance."""
    figure = Figure(figsize=(6, 5))
    axes = figure.subplots()
    for model, styles in (("fcn", "o-"), ("baseline", "s--")):
        rows = metrics.get(model, {}).get("overall", {}).get(tolerance_key)
        if not rows:
            continue
        recall = [row["recall"] for row in rows]
        precision = [row["precision"] for row in rows]
        axes.plot(recall, precision, styles, label=model)
        for row in rows[:: max(1, len(rows) // 4)]:
            axes.annotate(f"{row['threshold']:g}", (row["recall"], row["precision"]), fontsize=7)
    axes.set(
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        xlabel="recall",
        ylabel="precision",
        title=f"Dam detections, tolerance {tolerance_key} m (labels: score threshold)",
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    return figure
