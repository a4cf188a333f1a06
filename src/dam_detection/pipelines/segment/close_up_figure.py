"""Drawing of the close-ups figure: chips at full resolution with the heatmap over them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from dam_detection.pipelines.segment.close_ups import CloseUp, chip_origins
from dam_detection.pipelines.segment.predict import stretch_to_uint8


def _display(chip: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Percentile-stretched uint8 RGB of a chip's pixels inside the mosaic (black outside); one
    channel is shown as grey.
    """
    chip = np.nan_to_num(chip, nan=0.0, posinf=0.0, neginf=0.0)  # no data is drawn black
    if chip.shape[-1] == 1:
        chip = np.repeat(chip, 3, axis=-1)
    out = np.zeros((*chip.shape[:2], 3), dtype=np.uint8)
    if valid.any():
        out[valid] = stretch_to_uint8(chip[valid][:, :3])
    return out


def close_ups_figure(
    scene: str,
    chips: np.ndarray,
    heat: np.ndarray,
    close_ups: Sequence[CloseUp],
    *,
    total: int,
    threshold: float,
    known_rc: np.ndarray,
    found_rc: np.ndarray,
    tolerance_px: float,
    pixel_m: float,
    captions: Sequence[str] | None = None,
    heatmap_floor: float = 0.1,
    columns: int = 4,
) -> Figure:
    """A grid of chips: true colour at full resolution, the heatmap over it, marks and titles.

    Each chip shows the image (percentile stretch per chip; black past the mosaic edge), the
    heatmap in colour where it is at least ``heatmap_floor`` (semi-transparent), contour lines
    at 0.5 (dashed) and at the detection threshold (solid), every known dam in it (cyan ring of
    the matching tolerance) and every detection (lime +); four white ticks frame the centre.

    Args:
        scene: Scene name, for the title.
        chips: ``(n, s, s, C)`` image chips (``C`` 3 for RGB in display order, or 1).
        heat: ``(n, s, s)`` heatmap chips, NaN outside the mosaic.
        close_ups: What each chip is (its title and centre).
        total: Chips there were before the cap (the title says when some were left out).
        threshold: Detection threshold.
        known_rc: ``(k, 2)`` mosaic ``(row, col)`` of every known dam of the scene.
        found_rc: ``(m, 2)`` mosaic ``(row, col)`` of every detection of the scene.
        tolerance_px: Matching tolerance in pixels (radius of the rings).
        pixel_m: Pixel size in metres, for the title.
        captions: One line under each chip (e.g. its longitude and latitude).
        heatmap_floor: Heatmap values below this are not coloured.
        columns: Chips per row.
    """
    count = len(close_ups)
    size = chips.shape[1] if chips.ndim == 4 else 0
    shown = f"{count} of {total} shown" if count < total else f"{count} shown"
    threshold = round(float(threshold), 4)
    contours = "contours at 0.5 (dashed) and the" if threshold != 0.5 else "contour at the"
    title = (
        f"{scene}: close-ups, {size} x {size} px ({size * pixel_m:g} m) at full resolution, "
        f"{shown}\nheatmap >= {heatmap_floor:g} in colour; {contours} detection threshold "
        f"{threshold:.3g} (solid)"
    )
    if count == 0:
        figure = Figure(figsize=(7, 1.6))
        figure.suptitle(title, fontsize=9)
        figure.text(0.5, 0.35, "no known dams and no detections in this scene", ha="center")
        return figure
    ncols = min(columns, count)
    nrows = math.ceil(count / ncols)
    figure = Figure(figsize=(max(7.0, 2.6 * ncols + 1.0), 2.75 * nrows + 1.1), layout="constrained")
    axes_grid = figure.subplots(nrows, ncols, squeeze=False)
    origins = chip_origins([(c.row, c.col) for c in close_ups], size)
    known_rc = np.asarray(known_rc, dtype=np.float64).reshape(-1, 2)
    found_rc = np.asarray(found_rc, dtype=np.float64).reshape(-1, 2)
    image = None
    for k, axes in enumerate(axes_grid.flat):
        if k >= count:
            axes.set_axis_off()
            continue
        image = _draw_chip(
            axes, chips[k], heat[k], close_ups[k], origins[k], known_rc, found_rc,
            tolerance_px=tolerance_px, threshold=threshold, heatmap_floor=heatmap_floor,
        )  # fmt: skip
        if captions is not None:
            axes.set_xlabel(captions[k], fontsize=7)
    figure.suptitle(title, fontsize=9)
    if image is not None:
        figure.colorbar(image, ax=axes_grid, shrink=0.6, label="dam probability")
    _legend(figure, threshold, ncols)
    return figure


#: Title colour of each kind of chip.
_TITLE_COLOUR = {"found": "darkgreen", "missed": "firebrick", "false_alarm": "darkorange"}


def _draw_chip(
    axes: Axes,
    chip: np.ndarray,
    heat: np.ndarray,
    close_up: CloseUp,
    origin: np.ndarray,
    known_rc: np.ndarray,
    found_rc: np.ndarray,
    *,
    tolerance_px: float,
    threshold: float,
    heatmap_floor: float,
) -> AxesImage:
    """One chip: image, heatmap, contours, known dams, detections, centre ticks and title."""
    size = chip.shape[0]
    valid = np.isfinite(heat)
    axes.imshow(_display(chip, valid), interpolation="nearest")
    values = np.where(valid, heat, 0.0)
    image = axes.imshow(
        np.ma.masked_less(values, heatmap_floor), cmap="inferno", vmin=0, vmax=1, alpha=0.45,
        interpolation="nearest",
    )  # fmt: skip
    levels = sorted({0.5, threshold})
    styles = {0.5: ("orange", "--"), threshold: ("yellow", "-")}  # the threshold's wins a tie
    if np.nanmax(values) >= levels[0]:
        axes.contour(
            values, levels=levels, colors=[styles[v][0] for v in levels],
            linestyles=[styles[v][1] for v in levels], linewidths=1.0,
        )  # fmt: skip
    r_0, c_0 = origin
    for row, col in known_rc:
        if r_0 - tolerance_px <= row < r_0 + size + tolerance_px and (
            c_0 - tolerance_px <= col < c_0 + size + tolerance_px
        ):
            axes.add_patch(
                Circle((col - c_0 - 0.5, row - r_0 - 0.5), tolerance_px, fill=False,
                       edgecolor="cyan", linewidth=1.0)
            )  # fmt: skip
    inside = (
        (found_rc[:, 0] >= r_0) & (found_rc[:, 0] < r_0 + size)
        & (found_rc[:, 1] >= c_0) & (found_rc[:, 1] < c_0 + size)
    )  # fmt: skip
    axes.scatter(
        found_rc[inside, 1] - c_0 - 0.5, found_rc[inside, 0] - r_0 - 0.5, s=40, marker="+",
        c="lime", linewidths=1.2,
    )  # fmt: skip
    _centre_ticks(axes, close_up.row - r_0 - 0.5, close_up.col - c_0 - 0.5, size)
    axes.set(xlim=(-0.5, size - 0.5), ylim=(size - 0.5, -0.5), xticks=[], yticks=[])
    axes.set_title(close_up.title, fontsize=9, color=_TITLE_COLOUR[close_up.kind])
    return image


def _legend(figure: Figure, threshold: float, ncols: int) -> None:
    handles = [
        Line2D([], [], color="cyan", marker="o", markerfacecolor="none", linestyle="none",
               label="known dam (ring: matching tolerance)"),
        Line2D([], [], color="lime", marker="+", linestyle="none", label="detection"),
        Line2D([], [], color="yellow", label=f"heatmap = {threshold:.3g} (threshold)"),
    ]  # fmt: skip
    if threshold != 0.5:
        handles.append(Line2D([], [], color="orange", linestyle="--", label="heatmap = 0.5"))
    figure.legend(
        handles=handles, loc="outside lower center", ncols=4 if ncols > 2 else 2, fontsize=7,
        frameon=False,
    )  # fmt: skip


def _centre_ticks(axes: Axes, row: float, col: float, size: int) -> None:
    """Four short white ticks around the chip centre, leaving the centre itself clear."""
    gap, length = size * 0.1, size * 0.12
    for d_row, d_col in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        start, end = gap, gap + length
        axes.plot(
            [col + d_col * start, col + d_col * end], [row + d_row * start, row + d_row * end],
            color="white", linewidth=1.2, solid_capstyle="butt",
        )  # fmt: skip
