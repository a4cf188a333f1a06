"""Fully convolutional prediction on blocks of neighbouring patches, with only the halo the
receptive field needs.

An exported patch carries ``ky / 2`` and ``kx / 2`` pixels of context on every side; predicting
each buffered patch alone computes ``(h + ky) (w + kx)`` pixels to keep ``h w`` (2.25 times the
work for 256-pixel patches with a 128-pixel kernel). Here the patches of ``rows`` patch rows are
laid into one strip of the mosaic (their cores side by side, plus the context rows above the
first and below the last, and the columns left of the first and right of the last patch, taken
from the patches' own margins). The strip is predicted in blocks of ``cols`` patches, each with
a halo of ``(receptive field - 1) / 2`` pixels: every kept pixel sees exactly the inputs it saw
before, so the heatmap is the same up to float rounding, at about ``(4 h + 2 halo)^2 / (4 h)^2``
of the output area (1.27 for 4 x 4 blocks of 256-pixel patches and the default 127-pixel field).

Memory: one strip of ``rows`` patch rows is held at a time (a bounded rolling buffer: 4 rows of
a full Sentinel-2 tile, 1,152 x 10,880 pixels x 5 bands, are 250 MB of float32), then the
heatmap as float16.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from dam_detection.bands import normalize_bands
from dam_detection.mixer import Mixer
from dam_detection.pipelines.segment.predict import Predict, SceneStitcher, ScoreMap
from dam_detection.progress import Progress

logger = logging.getLogger(__name__)


def halo_for(receptive_field_px: int) -> int:
    """Context pixels each side a prediction needs: ``(field - 1) / 2``, rounded up."""
    return math.ceil((int(receptive_field_px) - 1) / 2)


def computed_area_ratio(mixer: Mixer, halo: int, rows: int, cols: int) -> float:
    """Pixels the FCN computes over pixels it keeps, for blocks of ``rows x cols`` patches."""
    per_row = mixer.patches_per_row
    patch_rows = mixer.total_patches // per_row
    computed = 0
    for top in range(0, patch_rows, rows):
        block_h = min(rows, patch_rows - top) * mixer.patch_height + 2 * halo
        for left in range(0, per_row, cols):
            block_w = min(cols, per_row - left) * mixer.patch_width + 2 * halo
            computed += block_h * block_w
    return computed / (mixer.width_px * mixer.height_px)


def predict_blocks(
    predict: Predict,
    blocks: Sequence[np.ndarray],
    band_stats: Mapping[str, Mapping[str, float]],
    bands: Sequence[str],
) -> np.ndarray:
    """The FCN's ``(N, H, W)`` probabilities for raw ``(H, W, C)`` blocks of one shape, predicted
    as one batch.

    Raises:
        ValueError: If the blocks differ in shape, or the model does not keep their height and
            width.
    """
    if len({block.shape for block in blocks}) != 1:
        raise ValueError(f"blocks of one batch must share a shape, got {[b.shape for b in blocks]}")
    batch = np.stack([normalize_bands(block, band_stats, bands) for block in blocks])
    output = np.asarray(predict(batch))
    output = output.reshape(output.shape[:3])
    if output.shape[1:] != blocks[0].shape[:2]:
        raise ValueError(
            f"the model returned {output.shape[1:]} for input {blocks[0].shape[:2]}; a fully "
            "convolutional model must keep the input's height and width"
        )
    return output


Window = tuple[int, int, int, int]
"""A block's core in an image that carries a halo around it: ``(top, left, rows, cols)``."""


def predict_windows(
    predict: Predict,
    image: np.ndarray,
    windows: Sequence[Window],
    halo: int,
    band_stats: Mapping[str, Mapping[str, float]],
    bands: Sequence[str],
    blocks_per_batch: int = 1,
) -> Iterator[tuple[Window, np.ndarray]]:
    """Each window's ``(rows, cols)`` probabilities, predicted with ``halo`` pixels of ``image``
    around it.

    Up to ``blocks_per_batch`` consecutive windows of one shape go to the model as one batch:
    oneDNN's AVX2 kernels compute a single large image slowly (a scan tile's blocks in batches of
    two: 2.9 s instead of 6.1 s on one thread; with AVX-512 no difference;
    benchmarks/results_scan.md). Each block more in a batch holds one more block's activations.
    """
    pending = list(windows)
    while pending:
        shape = pending[0][2:]
        count = 1
        while count < min(blocks_per_batch, len(pending)) and pending[count][2:] == shape:
            count += 1
        batch, pending = pending[:count], pending[count:]
        blocks = [image[t : t + r + 2 * halo, c : c + w + 2 * halo] for t, c, r, w in batch]
        outputs = predict_blocks(predict, blocks, band_stats, bands)
        for window, output in zip(batch, outputs, strict=True):
            rows, cols = window[2:]
            yield window, output[halo : halo + rows, halo : halo + cols]


def single_patches(batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The patches of a stream of batches, one at a time."""
    for batch in batches:
        yield from batch


def predict_scene_blocked(
    predict: Predict,
    batches: Iterable[np.ndarray],
    mixer: Mixer,
    kernel_size: tuple[int, int],
    band_stats: Mapping[str, Mapping[str, float]],
    bands: Sequence[str],
    *,
    halo: int,
    block_patches: int,
    blocks_per_batch: int = 1,
    scene: str = "",
    preview_max_px: int = 1024,
) -> ScoreMap:
    """Stitch an FCN heatmap from blocks of ``block_patches x block_patches`` patches.

    Args:
        predict: Maps a normalised batch ``(1, H, W, C)`` to ``(1, H, W)`` or ``(..., 1)``.
        batches: Raw buffered patches in export order, in batches ``(B, h + ky, w + kx, C)``.
        mixer: The scene's mixer.
        kernel_size: ``(kx, ky)`` the scene was exported with.
        band_stats: ``stats.json["bands"]``.
        bands: Channel order of the patches.
        halo: Context pixels kept around each block (:func:`halo_for` of the model's field);
            at most the export's margins.
        block_patches: Patches per block side.
        blocks_per_batch: Equal blocks of a strip predicted as one batch.
        scene: Scene name, for messages and the result.
        preview_max_px: Longer side of the RGB preview.

    Returns:
        The same :class:`ScoreMap` as per-patch prediction gives.

    Raises:
        MixerError: If a patch has the wrong shape or the patch count differs from the mixer's.
        ValueError: If the halo is wider than the export's margins.
    """
    stitcher = SceneStitcher(mixer, kernel_size, bands, scene, preview_max_px)
    margin_rows, margin_cols = stitcher.grid.halo
    if halo > min(margin_rows, margin_cols):
        raise ValueError(
            f"scene {scene!r}: the model needs {halo} pixels of context but the export carries "
            f"{margin_cols} x {margin_rows}; export with a kernel_size of at least {2 * halo}"
        )
    h, w, per_row = mixer.patch_height, mixer.patch_width, mixer.patches_per_row
    patch_rows = mixer.total_patches // per_row
    progress = Progress(logger, f"scene {scene}", mixer.total_patches, "patches predicted")
    strip: np.ndarray | None = None
    for patch in single_patches(batches):
        stitcher.check(patch.shape, 1)
        row, col = divmod(stitcher.add_patch(patch), per_row)
        band_top = row - row % block_patches
        band_rows = min(block_patches, patch_rows - band_top)
        local = row - band_top
        if local == 0 and col == 0:
            strip = np.zeros(
                (band_rows * h + 2 * halo, per_row * w + 2 * halo, patch.shape[-1]), np.float32
            )
        assert strip is not None  # allocated at the band's first patch
        # This patch's core, plus the margins that border the strip (context from outside it).
        top = margin_rows - (halo if local == 0 else 0)
        bottom = margin_rows + h + (halo if local == band_rows - 1 else 0)
        left = margin_cols - (halo if col == 0 else 0)
        right = margin_cols + w + (halo if col == per_row - 1 else 0)
        strip_top = halo + local * h - (halo if local == 0 else 0)
        strip_left = halo + col * w - (halo if col == 0 else 0)
        strip[strip_top : strip_top + bottom - top, strip_left : strip_left + right - left] = patch[
            top:bottom, left:right
        ]
        if local == band_rows - 1 and col == per_row - 1:
            _predict_strip(predict, strip, stitcher.heatmap, band_top * h, halo, block_patches * w,
                           band_stats, bands, blocks_per_batch)  # fmt: skip
            progress.update(band_rows * per_row)
    return stitcher.result()


def _predict_strip(
    predict: Predict,
    strip: np.ndarray,
    heatmap: np.ndarray,
    row_0: int,
    halo: int,
    block_width: int,
    band_stats: Mapping[str, Mapping[str, float]],
    bands: Sequence[str],
    blocks_per_batch: int,
) -> None:
    core_h, core_w = strip.shape[0] - 2 * halo, strip.shape[1] - 2 * halo
    windows = [
        (0, col_0, core_h, min(block_width, core_w - col_0))
        for col_0 in range(0, core_w, block_width)
    ]
    for (_, col_0, rows, cols), core in predict_windows(
        predict, strip, windows, halo, band_stats, bands, blocks_per_batch
    ):
        heatmap[row_0 : row_0 + rows, col_0 : col_0 + cols] = core
