"""Figures: the scene overlay (RGB, heatmap, detections, known dams) and precision-recall curves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dam_detection.pipelines.segment.close_ups import pixel_size_m
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
    """RGB scene, heatmap (transparent below ``heatmap_floor``), detections and known dams,
    with longitude/latitude on the axes and a scale bar.

    Drawn in preview pixels; detections are placed from their mosaic ``row``/``col``.
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
    _lonlat_ticks(axes, score_map, heat.shape)
    _scale_bar(axes, pixel_size_m(score_map.mixer) * step, heat.shape)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", fontsize=8, framealpha=0.7)
    figure.tight_layout()
    return figure


def _lonlat_ticks(axes: Axes, score_map: ScoreMap, shape: tuple[int, ...], count: int = 5) -> None:
    """Label the axes in degrees: longitude along the middle row, latitude down the middle
    column (a UTM scene is not aligned with meridians, so these are the values there).
    """
    step = score_map.preview_step
    rows, cols = shape[:2]
    transformer = pyproj.Transformer.from_crs(score_map.mixer.crs, "EPSG:4326", always_xy=True)
    x_ticks = np.linspace(0, cols - 1, count)
    y_ticks = np.linspace(0, rows - 1, count)
    lon, _ = transformer.transform(
        *score_map.mixer.pixel_to_crs((x_ticks + 0.5) * step, np.full(count, rows / 2 * step))
    )
    _, lat = transformer.transform(
        *score_map.mixer.pixel_to_crs(np.full(count, cols / 2 * step), (y_ticks + 0.5) * step)
    )
    axes.set_xticks(x_ticks, [f"{value:.3f}°" for value in lon], fontsize=7)
    axes.set_yticks(y_ticks, [f"{value:.3f}°" for value in lat], fontsize=7)
    axes.set_xlabel("longitude", fontsize=8)
    axes.set_ylabel("latitude", fontsize=8)


def _scale_bar(axes: Axes, metres_per_px: float, shape: tuple[int, ...]) -> None:
    """A white bar of a round length (about a fifth of the width) in the lower left corner."""
    rows, cols = shape[:2]
    target = cols * metres_per_px / 5
    length_m = max(
        (n * 10**e for e in range(0, 7) for n in (1, 2, 5) if n * 10**e <= target), default=1
    )
    length_px = length_m / metres_per_px
    x_0, y_0 = cols * 0.04, rows * 0.95
    axes.plot([x_0, x_0 + length_px], [y_0, y_0], color="white", linewidth=3)
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    axes.text(x_0 + length_px / 2, y_0 - rows * 0.015, label, color="white", ha="center",
              va="bottom", fontsize=8)  # fmt: skip


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
        line = axes.plot(recall, precision, styles, label=model, markersize=3)[0]
        for row in rows[:: max(1, len(rows) // 4)]:
            axes.annotate(f"{row['threshold']:g}", (row["recall"], row["precision"]), fontsize=7)
        operating = metrics.get("detection", {}).get(model, {}).get("threshold")
        if operating is not None:
            point = min(rows, key=lambda row: abs(row["threshold"] - float(operating)))
            axes.plot(
                point["recall"], point["precision"], "*", markersize=14,
                color=line.get_color(), markeredgecolor="black",
                label=f"{model} operating point (score >= {float(operating):.3g})",
            )  # fmt: skip
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
