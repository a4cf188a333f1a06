"""The baseline: the patch classifier slid over a scene at a fixed stride.

The classifier needs a ``size x size`` crop centred on every position it scores, wider than the
export's kernel buffer, so crops are cut from row strips of the mosaic: each patch row is stitched
from its buffered patches, and the rows above and below lend their pixels for context. At most
``2 * lookahead + 1`` patch rows are held at once; where the export has no data (outside the
scene) the nearest exported pixel is repeated.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from dam_detection.bands import normalize_bands
from dam_detection.mixer import Mixer, MixerError
from dam_detection.mosaic import PatchGrid
from dam_detection.pipelines.segment.predict import HEATMAP_DTYPE, Predict, ScoreMap


def iter_row_strips(
    batches: Iterable[np.ndarray], mixer: Mixer, kernel_size: tuple[int, int], scene: str = ""
) -> Iterator[np.ndarray]:
    """Stitch buffered patches into buffered patch rows.

    Yields:
        For every patch row ``i``, ``(h + ky, W + kx, C)``: mosaic rows ``i * h - ky / 2`` to
        ``(i + 1) * h + ky / 2`` and columns ``-kx / 2`` to ``W + kx / 2``.

    Raises:
        MixerError: If a patch has the wrong shape or the count differs from the mixer's.
    """
    kernel_x = kernel_size[0]
    grid = PatchGrid(mixer, kernel_size)
    height, width = grid.buffered_shape
    strip: np.ndarray | None = None
    index = 0
    for batch in batches:
        grid.check_patch(batch.shape[1:], index, scene)
        for patch in batch:
            if index >= mixer.total_patches:
                raise MixerError(f"scene {scene!r}: more patches than totalPatches")
            column = index % mixer.patches_per_row
            if strip is None:
                strip = np.empty((height, mixer.width_px + kernel_x, patch.shape[-1]), np.float32)
            # Neighbouring buffered patches overlap with identical pixels: plain overwrite.
            left = column * mixer.patch_width
            strip[:, left : left + width] = patch
            index += 1
            if column == mixer.patches_per_row - 1:
                yield strip
                strip = None
    grid.check_count(index, scene)


def iter_context_strips(
    row_strips: Iterable[np.ndarray], mixer: Mixer, kernel_size: tuple[int, int], margin: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Patch rows widened by ``margin`` pixels of context on every side.

    Yields:
        ``(i, strip)`` with ``strip`` of shape ``(h + 2 margin, W + 2 margin, C)``: mosaic rows
        ``i * h - margin`` to ``(i + 1) * h + margin``, columns ``-margin`` to ``W + margin``.
    """
    half_y, half_x = PatchGrid(mixer, kernel_size).halo
    height = mixer.patch_height
    lookahead = math.ceil(margin / height)
    window: deque[tuple[int, np.ndarray]] = deque()
    rows = mixer.rows

    def build(i: int) -> np.ndarray:
        strips = dict(window)
        wanted = np.arange(i * height - margin, (i + 1) * height + margin)
        # A row comes from the strip whose core holds it, else the nearest strip's buffer edge.
        owner = np.clip(wanted // height, max(0, i - lookahead), min(rows - 1, i + lookahead))
        local = np.clip(wanted - owner * height + half_y, 0, height + 2 * half_y - 1)
        columns = np.clip(np.arange(-margin, mixer.width_px + margin) + half_x, 0, None)
        columns = np.minimum(columns, mixer.width_px + 2 * half_x - 1)
        out = np.empty(
            (len(wanted), len(columns), next(iter(strips.values())).shape[-1]), np.float32
        )
        for k in np.unique(owner):
            take = owner == k
            out[take] = strips[int(k)][local[take]][:, columns]
        return out

    next_out = 0
    for i, strip in enumerate(row_strips):
        window.append((i, strip))
        while window and window[0][0] < i - 2 * lookahead:
            window.popleft()
        while next_out <= i - lookahead:
            yield next_out, build(next_out)
            next_out += 1
    while next_out < rows:
        yield next_out, build(next_out)
        next_out += 1


def slide_classifier(
    predict: Predict,
    batches: Iterable[np.ndarray],
    mixer: Mixer,
    kernel_size: tuple[int, int],
    band_stats: Mapping[str, Mapping[str, float]],
    bands: Sequence[str],
    *,
    crop_size: int,
    stride: int,
    batch_size: int = 64,
    scene: str = "",
    max_rows: int | None = None,
) -> ScoreMap:
    """Score a crop centred every ``stride`` pixels with a patch classifier.

    Args:
        predict: Maps normalised crops ``(B, crop_size, crop_size, C)`` to ``(B,)`` or ``(B, 1)``.
        batches: Raw buffered patches in export order, ``(B, h + ky, w + kx, C)``.
        mixer: The scene's mixer.
        kernel_size: ``(kx, ky)`` of the export.
        band_stats: ``stats.json["bands"]``.
        bands: Channel order.
        crop_size: The classifier's input size (odd: the scored pixel is the centre).
        stride: Pixels between scored positions; the grid starts at ``stride // 2``.
        batch_size: Crops per model call.
        scene: Scene name for messages.
        max_rows: Score only the first ``max_rows`` grid rows (benchmarks time a slice of a
            scene at stride 1); ``None`` scores the whole grid.

    Returns:
        A :class:`ScoreMap` with ``stride`` and ``offset = stride // 2``.
    """
    start = time.perf_counter()
    half = crop_size // 2
    offset = stride // 2
    grid_rows = math.ceil((mixer.height_px - offset) / stride)
    grid_cols = math.ceil((mixer.width_px - offset) / stride)
    scores = np.zeros((grid_rows, grid_cols), dtype=HEATMAP_DTYPE)
    col_px = offset + np.arange(grid_cols) * stride
    strips = iter_row_strips(batches, mixer, kernel_size, scene)
    for i, strip in iter_context_strips(strips, mixer, kernel_size, half):
        top = i * mixer.patch_height
        grid_rows_here = np.arange(grid_rows)[
            (offset + np.arange(grid_rows) * stride >= top)
            & (offset + np.arange(grid_rows) * stride < top + mixer.patch_height)
        ]
        if max_rows is not None:
            grid_rows_here = grid_rows_here[grid_rows_here < max_rows]
        if grid_rows_here.size == 0:
            if max_rows is not None and i * mixer.patch_height > offset + max_rows * stride:
                break
            continue
        normalised = normalize_bands(strip, band_stats, bands)
        windows = np.lib.stride_tricks.sliding_window_view(
            normalised, (crop_size, crop_size), axis=(0, 1)
        )  # (rows, cols, C, crop, crop), a view: crops are copied only batch by batch
        centres_r = offset + grid_rows_here * stride - top  # strip row of the centre - margin
        rr, cc = np.meshgrid(centres_r, col_px, indexing="ij")
        flat_r, flat_c = rr.ravel(), cc.ravel()
        out = np.empty(flat_r.size, dtype=np.float32)
        for b in range(0, flat_r.size, batch_size):
            crops = windows[flat_r[b : b + batch_size], flat_c[b : b + batch_size]]
            crops = np.ascontiguousarray(np.moveaxis(crops, 1, -1))
            out[b : b + batch_size] = np.asarray(predict(crops)).reshape(-1)
        scores[grid_rows_here] = out.reshape(rr.shape)
    return ScoreMap(
        scene=scene,
        mixer=mixer,
        probability=scores if max_rows is None else scores[:max_rows],
        stride=stride,
        offset=offset,
        seconds=time.perf_counter() - start,
    )
