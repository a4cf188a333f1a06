"""Fully convolutional prediction over a scene export, one buffered patch batch at a time.

Earth Engine hands a scene over as buffered patches: each carries ``kx / 2`` and ``ky / 2`` pixels
of its neighbours on every side. The FCN sees the whole buffered patch, so pixels near a patch
edge have real context, and only the unbuffered centre of each prediction is kept: neighbouring
crops tile the mosaic exactly, without seams (raster-vision's predict-with-crop).

Memory: patches stream through in batches; the only scene-sized array is the heatmap itself,
kept as float16 (2 bytes a pixel: a full 10980 x 10980 Sentinel-2 tile is 241 MB, float32 would
be 482 MB). float16 resolves probabilities to 0.0005 or better, far finer than any threshold or
tolerance in the evaluation, and GDAL/QGIS read float16 GeoTIFFs as Float32.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dam_detection.bands import RGB_BANDS, non_finite_pixels, normalize_bands
from dam_detection.mixer import Mixer, MixerError
from dam_detection.mosaic import PatchGrid
from dam_detection.progress import Progress

logger = logging.getLogger(__name__)

#: Seconds between progress lines on long scenes.
#: Heatmap dtype (see the module docstring for why not float32).
HEATMAP_DTYPE = np.float16

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class ScoreMap:
    """Dam probability over a scene, sampled every ``stride`` mosaic pixels.

    Cell ``(i, j)`` holds the score of the mosaic pixel ``(offset + i * stride, offset + j *
    stride)``; the FCN's heatmap has ``stride=1, offset=0``, the sliding classifier's a coarser
    grid.

    Attributes:
        scene: Scene name.
        mixer: The scene's mixer (CRS, affine, patch layout).
        probability: ``(rows, cols)`` float16 scores in ``[0, 1]``.
        stride: Mosaic pixels between neighbouring cells.
        offset: Mosaic pixel of cell ``(0, 0)`` along both axes.
        seconds: Wall time spent reading, normalising and predicting.
        preview: ``(rows, cols, 3)`` uint8 RGB of the scene, every ``preview_step`` pixels.
        preview_step: Mosaic pixels between preview pixels.
        non_finite_pixels: Mosaic pixels whose bands held NaN or infinity, read as no data.
        no_data: Where those pixels are (``(rows, cols)`` bool), or ``None`` when there are
            none (the usual case: no scene-sized mask is allocated).
    """

    scene: str
    mixer: Mixer
    probability: np.ndarray
    stride: int = 1
    offset: int = 0
    seconds: float = 0.0
    preview: np.ndarray | None = None
    preview_step: int = 1
    non_finite_pixels: int = 0
    no_data: np.ndarray | None = None

    def cell_to_pixel(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mosaic pixel-centre coordinates ``(col + 0.5, row + 0.5)`` of cells (float arrays)."""
        row_px = self.offset + np.asarray(rows, dtype=np.float64) * self.stride + 0.5
        col_px = self.offset + np.asarray(cols, dtype=np.float64) * self.stride + 0.5
        return col_px, row_px

    def cell_affine(self) -> tuple[float, float, float, float, float, float]:
        """Affine of the grid of cells (corners), for a GeoTIFF of ``probability``."""
        x_scale, x_shear, _, y_shear, y_scale, _ = self.mixer.affine
        # The cell is centred on its pixel, so its corner sits (stride - 1) / 2 pixels before it.
        start = self.offset - (self.stride - 1) / 2
        x_0, y_0 = self.mixer.pixel_to_crs(start, start)
        s = self.stride
        return (x_scale * s, x_shear * s, x_0, y_shear * s, y_scale * s, y_0)


def batched(patches: Iterable[np.ndarray], batch_size: int) -> Iterable[np.ndarray]:
    """Group single patches ``(h, w, C)`` into batches ``(B, h, w, C)`` (last may be smaller)."""
    batch: list[np.ndarray] = []
    for patch in patches:
        batch.append(patch)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def preview_step_for(mixer: Mixer, max_size_px: int) -> int:
    """Smallest whole step that keeps the preview's longer side at or under ``max_size_px``."""
    return max(1, math.ceil(max(mixer.width_px, mixer.height_px) / max_size_px))


class _PreviewSampler:
    """Collects every ``step``-th pixel of the unbuffered mosaic's RGB bands, patch by patch."""

    def __init__(self, mixer: Mixer, step: int, rgb_channels: Sequence[int] | None) -> None:
        self.mixer, self.step, self.channels = mixer, step, rgb_channels
        shape = (math.ceil(mixer.height_px / step), math.ceil(mixer.width_px / step), 3)
        self.rgb = np.zeros(shape, np.float32) if rgb_channels is not None else None

    def add(self, index: int, core: np.ndarray) -> None:
        if self.rgb is None or self.channels is None:
            return
        row_0, col_0 = self.mixer.patch_origin(index)
        first_row, first_col = (-row_0) % self.step, (-col_0) % self.step
        sample = np.take(core[first_row :: self.step, first_col :: self.step], self.channels, -1)
        top, left = (row_0 + first_row) // self.step, (col_0 + first_col) // self.step
        self.rgb[top : top + sample.shape[0], left : left + sample.shape[1]] = sample

    def image(self) -> np.ndarray | None:
        return None if self.rgb is None else stretch_to_uint8(self.rgb)


def stretch_to_uint8(rgb: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Percentile contrast stretch of a float RGB image to uint8, as previews need."""
    lo, hi = np.percentile(rgb, [low, high])
    scaled = (rgb - lo) / max(float(hi - lo), 1e-6)
    return (np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


class SceneStitcher:
    """What every prediction path keeps while a scene streams through: the float16 heatmap, the
    RGB preview, and the pixels with no data (NaN or infinity), counted and never passed on.

    Args:
        mixer: The scene's mixer.
        kernel_size: ``(kx, ky)`` the scene was exported with.
        bands: Channel order of the patches.
        scene: Scene name, for messages and the result.
        preview_max_px: Longer side of the RGB preview.
    """

    def __init__(
        self,
        mixer: Mixer,
        kernel_size: tuple[int, int],
        bands: Sequence[str],
        scene: str,
        preview_max_px: int,
    ) -> None:
        self.start = time.perf_counter()
        self.mixer, self.scene = mixer, scene
        self.grid = PatchGrid(mixer, kernel_size)
        self.heatmap = np.zeros((mixer.height_px, mixer.width_px), dtype=HEATMAP_DTYPE)
        rgb = [list(bands).index(b) for b in RGB_BANDS] if set(RGB_BANDS) <= set(bands) else None
        self.preview = _PreviewSampler(mixer, preview_step_for(mixer, preview_max_px), rgb)
        self.count = self.non_finite = 0
        self.no_data: np.ndarray | None = None

    def check(self, shape: tuple[int, ...], patches: int) -> None:
        """Raise if the next ``patches`` patches of ``shape`` do not fit the mixer."""
        self.grid.check_patch(shape, self.count, self.scene)
        if self.count + patches > self.mixer.total_patches:
            raise MixerError(
                f"scene {self.scene!r}: the files hold more patches than the mixer's "
                f"totalPatches {self.mixer.total_patches}"
            )

    def add_patch(self, patch: np.ndarray) -> int:
        """Take the next buffered patch's core into the preview and the no-data mask.

        Returns:
            The patch's index in export order.
        """
        index = self.count
        core = patch[self.grid.core]
        bad = non_finite_pixels(core)
        if bad.any():  # no data, as masked pixels are: counted, never passed on
            self.non_finite += int(bad.sum())
            core = np.where(bad[..., None], 0.0, core)
            if self.no_data is None:
                self.no_data = np.zeros(self.heatmap.shape, dtype=bool)
            self.no_data[self.grid.core_window(index)] |= bad
        self.preview.add(index, core)
        self.count += 1
        return index

    def result(self) -> ScoreMap:
        """The finished score map (after checking every patch arrived)."""
        self.grid.check_count(self.count, self.scene)
        if self.non_finite:
            logger.warning(
                "scene %s: %d pixels hold NaN or infinite values; they are read as no data",
                self.scene,
                self.non_finite,
            )
        return ScoreMap(
            scene=self.scene,
            mixer=self.mixer,
            probability=self.heatmap,
            seconds=time.perf_counter() - self.start,
            preview=self.preview.image(),
            preview_step=self.preview.step,
            non_finite_pixels=self.non_finite,
            no_data=self.no_data,
        )


def predict_scene(
    predict: Predict,
    batches: Iterable[np.ndarray],
    mixer: Mixer,
    kernel_size: tuple[int, int],
    band_stats: Mapping[str, Mapping[str, float]],
    bands: Sequence[str],
    *,
    scene: str = "",
    preview_max_px: int = 1024,
) -> ScoreMap:
    """Run an FCN over every buffered patch and stitch the cropped predictions.

    Args:
        predict: Maps a normalised batch ``(B, h + ky, w + kx, C)`` to ``(B, h + ky, w + kx)``
            or ``(..., 1)`` probabilities (e.g. ``model.predict_on_batch``).
        batches: Raw (not normalised) buffered patches in export order, as batches
            ``(B, h + ky, w + kx, C)``, channels in ``bands`` order.
        mixer: The scene's mixer.
        kernel_size: ``(kx, ky)`` the scene was exported with.
        band_stats: ``stats.json["bands"]``.
        bands: Channel order of the batches.
        scene: Scene name, for messages and the result.
        preview_max_px: Longer side of the RGB preview.

    Returns:
        The stitched float16 heatmap of the unbuffered mosaic and an RGB preview.

    Raises:
        MixerError: If a patch has the wrong shape or the patch count differs from the mixer's.
    """
    stitcher = SceneStitcher(mixer, kernel_size, bands, scene, preview_max_px)
    grid = stitcher.grid
    progress = Progress(logger, f"scene {scene}", mixer.total_patches, "patches predicted")
    for batch in batches:
        stitcher.check(batch.shape[1:], len(batch))
        output = np.asarray(predict(normalize_bands(batch, band_stats, bands)))
        output = output.reshape(output.shape[:3])
        if output.shape != batch.shape[:3]:
            raise ValueError(
                f"the model returned {output.shape[1:]} for input {batch.shape[1:3]}; a fully "
                "convolutional model must keep the input's height and width"
            )
        for probability, patch in zip(output, batch, strict=True):
            index = stitcher.add_patch(patch)
            stitcher.heatmap[grid.core_window(index)] = probability[grid.core]
        progress.update(len(batch))
    return stitcher.result()


def keras_predictor(model: object) -> Predict:
    """``model.predict_on_batch`` as a plain function (no tf.data, no progress bar)."""
    return model.predict_on_batch  # type: ignore[attr-defined]  # any Keras model
