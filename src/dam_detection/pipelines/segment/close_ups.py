"""Close-ups: full-resolution chips around every known dam and every detection of a scene.

The overview overlay shrinks a 2048 px scene to 1024 px or less, where a peak is a dot. A close-up
is a window of ``size x size`` mosaic pixels (96 px = 960 m by default) around one known dam or
detection, with the true-colour image at full resolution and the heatmap drawn over it, so one can
see whether the heatmap peaks on the dam wall or on the shoreline or road next to it.

Chips are cut from the stream of buffered patches (:func:`cut_chips`): only the chips are held,
never the whole scene. What to show and how to label it is :func:`select_close_ups`; drawing is
:func:`close_ups_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyproj
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from dam_detection.detection.matching import match_points
from dam_detection.mixer import Mixer, MixerError
from dam_detection.mosaic import PatchGrid
from dam_detection.pipelines.segment.predict import stretch_to_uint8

#: Mean Earth radius, metres: turns the degrees of a geographic CRS into metres.
EARTH_RADIUS_M = 6_371_008.8

Kind = Literal["found", "missed", "false_alarm"]


@dataclass(frozen=True)
class CloseUp:
    """One chip to draw.

    Attributes:
        row: Mosaic row of the chip centre (pixel coordinates: pixel ``i`` spans ``[i, i + 1)``).
        col: Mosaic column of the chip centre.
        kind: ``found`` (a known dam matched by a detection; centred on the dam), ``missed`` (a
            known dam no detection matched) or ``false_alarm`` (a detection matching no dam).
        score: The detection's score (``found``, ``false_alarm``) or the heatmap's maximum within
            the matching tolerance of the dam (``missed``).
    """

    row: float
    col: float
    kind: Kind
    score: float

    @property
    def title(self) -> str:
        """``dam found 0.998``, ``missed dam (max 0.53)`` or ``false alarm 0.962``."""
        if self.kind == "found":
            return f"dam found {self.score:.3f}"
        if self.kind == "missed":
            return f"missed dam (max {self.score:.2f})"
        return f"false alarm {self.score:.3f}"


def pixel_size_m(mixer: Mixer) -> float:
    """Ground size of a mosaic pixel in metres (square root of the pixel area).

    Projected CRSs use their axis unit; for a geographic CRS a degree is taken as
    ``EARTH_RADIUS_M * pi / 180`` (exact along a meridian, an approximation across).
    """
    x_scale, x_shear, _, y_shear, y_scale, _ = mixer.affine
    size = math.sqrt(abs(x_scale * y_scale - x_shear * y_shear))
    crs = pyproj.CRS(mixer.crs)
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return size * factor * (EARTH_RADIUS_M if crs.is_geographic else 1.0)


def peak_near(probability: np.ndarray, row: float, col: float, radius: float) -> float:
    """Highest score of the pixels whose centres lie within ``radius`` pixels of ``(row, col)``;
    the pixel holding the point when none does; 0 outside the map."""
    rows, cols = probability.shape
    top, bottom = max(0, math.floor(row - radius)), min(rows, math.ceil(row + radius) + 1)
    left, right = max(0, math.floor(col - radius)), min(cols, math.ceil(col + radius) + 1)
    if top >= bottom or left >= right:
        return 0.0
    window = np.asarray(probability[top:bottom, left:right], dtype=np.float32)
    r, c = np.indices(window.shape)
    inside = (r + top + 0.5 - row) ** 2 + (c + left + 0.5 - col) ** 2 <= radius**2
    if inside.any():
        return float(window[inside].max())
    pixel_row, pixel_col = math.floor(row), math.floor(col)
    if 0 <= pixel_row < rows and 0 <= pixel_col < cols:
        return float(probability[pixel_row, pixel_col])
    return 0.0


def select_close_ups(
    known_rc: np.ndarray,
    found_rc: np.ndarray,
    found_scores: np.ndarray,
    probability: np.ndarray,
    tolerance_px: float,
    max_chips: int | None,
) -> tuple[list[CloseUp], int]:
    """Which chips a scene's figure shows, in order, and how many there were to show.

    Known dams and detections are matched one to one within ``tolerance_px``
    (:func:`~dam_detection.pipelines.segment.evaluate.match_points`, as the evaluation does): a
    matched dam shows once, as ``found``, centred on the dam. Order: every known dam in table
    order (``found`` or ``missed``), then the unmatched detections (``false_alarm``), highest
    score first. The first ``max_chips`` are kept (all when ``None``).

    Args:
        known_rc: ``(n, 2)`` mosaic ``(row, col)`` of the known dams.
        found_rc: ``(m, 2)`` mosaic ``(row, col)`` of the detections.
        found_scores: ``(m,)`` detection scores.
        probability: ``(rows, cols)`` heatmap, for the best score near a missed dam.
        tolerance_px: Matching tolerance in pixels.
        max_chips: Most chips kept; ``None`` keeps all.

    Returns:
        ``(close_ups, total)``: the kept chips and the number before the cap.
    """
    known_rc = np.asarray(known_rc, dtype=np.float64).reshape(-1, 2)
    found_rc = np.asarray(found_rc, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(found_scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(found_rc):
        raise ValueError(f"{len(found_rc)} detections but {len(scores)} scores")
    pairs = match_points(known_rc, found_rc, tolerance_px)
    match = dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True))
    chosen: list[CloseUp] = []
    for i, (row, col) in enumerate(known_rc):
        if i in match:
            chosen.append(CloseUp(float(row), float(col), "found", float(scores[match[i]])))
        else:
            best = peak_near(probability, row, col, tolerance_px)
            chosen.append(CloseUp(float(row), float(col), "missed", best))
    unmatched = np.setdiff1d(np.arange(len(found_rc)), pairs[:, 1])
    for j in unmatched[np.argsort(-scores[unmatched], kind="stable")]:
        row, col = found_rc[j]
        chosen.append(CloseUp(float(row), float(col), "false_alarm", float(scores[j])))
    total = len(chosen)
    if max_chips is not None:
        chosen = chosen[: max(0, int(max_chips))]
    return chosen, total


def chip_origins(centres_rc: np.ndarray, size: int) -> np.ndarray:
    """Top-left mosaic pixel ``(row, col)`` of each chip: the pixel holding the centre is pixel
    ``(size // 2, size // 2)`` of its chip."""
    pixels = np.floor(np.asarray(centres_rc, dtype=np.float64).reshape(-1, 2)).astype(np.int64)
    return pixels - size // 2


def _single_patches(patches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Patches ``(h, w, C)`` one by one, whether they come singly or in batches ``(B, h, w, C)``."""
    for patch in patches:
        if patch.ndim == 4:
            yield from patch
        else:
            yield patch


def cut_chips(
    patches: Iterable[np.ndarray],
    mixer: Mixer,
    kernel_size: tuple[int, int],
    centres_rc: np.ndarray,
    size: int,
) -> np.ndarray:
    """Full-resolution chips of the mosaic around ``centres_rc``, cut from streamed patches.

    Each patch's unbuffered core is placed at ``mixer.patch_origin(i)`` and the part of it that
    falls in a chip window is copied; nothing scene-sized is built. Reading stops after the last
    patch any chip needs.

    Args:
        patches: Buffered patches ``(h + ky, w + kx, C)`` (or batches of them) in export order.
        mixer: The scene's mixer.
        kernel_size: ``(kx, ky)`` the scene was exported with.
        centres_rc: ``(n, 2)`` mosaic ``(row, col)`` of the chip centres (see
            :func:`chip_origins`).
        size: Chip side in pixels.

    Returns:
        ``(n, size, size, C)`` float32; pixels outside the mosaic are 0.

    Raises:
        MixerError: If a patch has the wrong shape or the stream ends before a patch a chip needs.
        ValueError: If ``size < 1``.
    """
    if size < 1:
        raise ValueError(f"chip size must be >= 1 pixel, got {size}")
    origins = chip_origins(centres_rc, size)
    grid = PatchGrid(mixer, kernel_size)
    half_y, half_x = grid.halo
    height, width = mixer.patch_height, mixer.patch_width
    # Reading stops at the last patch a chip needs; at least patch 0, which says how many
    # channels there are.
    last = grid.last_patch_for(origins, size)
    chips: np.ndarray | None = None
    index = -1
    for index, patch in enumerate(_single_patches(patches)):
        grid.check_patch(patch.shape, index)
        if chips is None:
            chips = np.zeros((len(origins), size, size, patch.shape[2]), dtype=np.float32)
        row_0, col_0 = mixer.patch_origin(index)
        # Overlap of each chip window with this patch's core, in mosaic pixels (end exclusive).
        top = np.maximum(origins[:, 0], row_0)
        end_row = np.minimum(origins[:, 0] + size, row_0 + height)
        left = np.maximum(origins[:, 1], col_0)
        end_col = np.minimum(origins[:, 1] + size, col_0 + width)
        for k in np.flatnonzero((end_row > top) & (end_col > left)):
            r, c = origins[k]
            chips[k, top[k] - r : end_row[k] - r, left[k] - c : end_col[k] - c] = patch[
                half_y + top[k] - row_0 : half_y + end_row[k] - row_0,
                half_x + left[k] - col_0 : half_x + end_col[k] - col_0,
            ]
        if index == last:
            break
    if chips is None or index < last:
        raise MixerError(
            f"the patch stream ended after {index + 1} patches; the chips need patch {last}"
        )
    return chips


def cut_heat(probability: np.ndarray, centres_rc: np.ndarray, size: int) -> np.ndarray:
    """``(n, size, size)`` float32 windows of the heatmap around ``centres_rc`` (as
    :func:`cut_chips` places them); NaN outside the map."""
    origins = chip_origins(centres_rc, size)
    rows, cols = probability.shape
    out = np.full((len(origins), size, size), np.nan, dtype=np.float32)
    for k, (r, c) in enumerate(origins):
        top, bottom = max(r, 0), min(r + size, rows)
        left, right = max(c, 0), min(c + size, cols)
        if top < bottom and left < right:
            out[k, top - r : bottom - r, left - c : right - c] = probability[top:bottom, left:right]
    return out


def _display(chip: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Percentile-stretched uint8 RGB of a chip's pixels inside the mosaic (black outside); one
    channel is shown as grey."""
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
    levels = sorted({0.5, threshold})
    styles = {0.5: ("orange", "--"), threshold: ("yellow", "-")}  # the threshold's wins a tie
    colour = {"found": "darkgreen", "missed": "firebrick", "false_alarm": "darkorange"}
    image = None
    for k, axes in enumerate(axes_grid.flat):
        if k >= count:
            axes.set_axis_off()
            continue
        valid = np.isfinite(heat[k])
        axes.imshow(_display(chips[k], valid), interpolation="nearest")
        values = np.where(valid, heat[k], 0.0)
        image = axes.imshow(
            np.ma.masked_less(values, heatmap_floor), cmap="inferno", vmin=0, vmax=1, alpha=0.45,
            interpolation="nearest",
        )  # fmt: skip
        if np.nanmax(values) >= levels[0]:
            axes.contour(
                values, levels=levels, colors=[styles[v][0] for v in levels],
                linestyles=[styles[v][1] for v in levels], linewidths=1.0,
            )  # fmt: skip
        r_0, c_0 = origins[k]
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
        _centre_ticks(axes, close_ups[k].row - r_0 - 0.5, close_ups[k].col - c_0 - 0.5, size)
        axes.set(xlim=(-0.5, size - 0.5), ylim=(size - 0.5, -0.5), xticks=[], yticks=[])
        axes.set_title(close_ups[k].title, fontsize=9, color=colour[close_ups[k].kind])
        if captions is not None:
            axes.set_xlabel(captions[k], fontsize=7)
    figure.suptitle(title, fontsize=9)
    if image is not None:
        figure.colorbar(image, ax=axes_grid, shrink=0.6, label="dam probability")
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
    return figure


def _centre_ticks(axes: Axes, row: float, col: float, size: int) -> None:
    """Four short white ticks around the chip centre, leaving the centre itself clear."""
    gap, length = size * 0.1, size * 0.12
    for d_row, d_col in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        start, end = gap, gap + length
        axes.plot(
            [col + d_col * start, col + d_col * end], [row + d_row * start, row + d_row * end],
            color="white", linewidth=1.2, solid_capstyle="butt",
        )  # fmt: skip
