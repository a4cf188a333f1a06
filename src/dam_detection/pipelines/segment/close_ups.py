"""Close-ups: full-resolution chips around every known dam and every detection of a scene.

The overview overlay shrinks a 2048 px scene to 1024 px or less, where a peak is a dot. A close-up
is a window of ``size x size`` mosaic pixels (96 px = 960 m by default) around one known dam or
detection, with the true-colour image at full resolution and the heatmap drawn over it, so one can
see whether the heatmap peaks on the dam wall or on the shoreline or road next to it.

Chips are cut from the stream of buffered patches (:func:`cut_chips`): only the chips are held,
never the whole scene. What to show and how to label it is :func:`select_close_ups`; drawing is
:func:`~.close_up_figure.close_ups_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyproj

from dam_detection.detection.matching import match_points
from dam_detection.mixer import Mixer, MixerError
from dam_detection.mosaic import PatchGrid

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
    the pixel holding the point when none does; 0 outside the map.
    """
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


def chip_origins(centres_rc: np.ndarray | Sequence[tuple[float, float]], size: int) -> np.ndarray:
    """Top-left mosaic pixel ``(row, col)`` of each chip: the pixel holding the centre is pixel
    ``(size // 2, size // 2)`` of its chip.
    """
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
    :func:`cut_chips` places them); NaN outside the map.
    """
    origins = chip_origins(centres_rc, size)
    rows, cols = probability.shape
    out = np.full((len(origins), size, size), np.nan, dtype=np.float32)
    for k, (r, c) in enumerate(origins):
        top, bottom = max(r, 0), min(r + size, rows)
        left, right = max(c, 0), min(c + size, cols)
        if top < bottom and left < right:
            out[k, top - r : bottom - r, left - c : right - c] = probability[top:bottom, left:right]
    return out
