"""Tiny scene exports for the segment tests, written in Earth Engine's image-export format."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import keras
import numpy as np

from dam_detection.datasets.export_plan import ExportPlan
from dam_detection.datasets.image_export import ImageExport
from dam_detection.datasets.image_export_dataset import ImageExportDataset
from dam_detection.image_sources.base import SceneExport
from dam_detection.mixer import Mixer
from dam_detection.tfrecord_codec import encode_example

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
KERNEL = (16, 16)
#: UTM 14N, 10 m pixels: 2 x 2 patches of 64 x 64 px (1.28 km square).
MIXER = Mixer("EPSG:32614", (10.0, 0.0, 500000.0, 0.0, -10.0, 4480000.0), 64, 64, 2, 4)
UNIT_STATS = {band: {"mean": 0.0, "std": 1.0} for band in BANDS}


def buffered_patches(padded: np.ndarray, mixer: Mixer, kernel: tuple[int, int]) -> list[np.ndarray]:
    """The buffered patches Earth Engine would cut from ``padded``: the mosaic with ``k / 2``
    pixels of margin on every side, ``(H + ky, W + kx, C)``."""
    height, width = mixer.patch_height + kernel[1], mixer.patch_width + kernel[0]
    patches = []
    for index in range(mixer.total_patches):
        row, col = mixer.patch_origin(index)
        patches.append(padded[row : row + height, col : col + width])
    return patches


def write_scene(
    root: Path,
    name: str,
    padded: np.ndarray,
    *,
    mixer: Mixer = MIXER,
    kernel: tuple[int, int] = KERNEL,
    truth: gpd.GeoDataFrame | None = None,
    patches_per_file: int = 3,
    drop_last: bool = False,
) -> ImageExport:
    """Write ``padded`` as a scene export under ``root/name`` through ``ImageExportDataset``."""
    examples = [
        encode_example({band: patch[..., i] for i, band in enumerate(BANDS)})
        for patch in buffered_patches(padded, mixer, kernel)
    ]
    if drop_last:
        examples = examples[:-1]
    files = {
        f"scene-{n:05d}.tfrecord.gz": (lambda chunk=examples[i : i + patches_per_file]: chunk)
        for n, i in enumerate(range(0, len(examples), patches_per_file))
    }
    dataset = ImageExportDataset(filepath=str(root))
    dataset.save(ExportPlan({name: SceneExport(mixer=mixer.to_json(), files=files, truth=truth)}))
    return dataset.load()[name]


def padded_mosaic(
    seed: int = 0, mixer: Mixer = MIXER, kernel: tuple[int, int] = KERNEL
) -> np.ndarray:
    """Random ``(H + ky, W + kx, 5)`` float32 values in [0, 1)."""
    shape = (mixer.height_px + kernel[1], mixer.width_px + kernel[0], len(BANDS))
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def tiny_fcn(seed: int = 0) -> keras.Model:
    """A small fully convolutional model: (H, W, 5) -> (H, W, 1) sigmoid, 7 x 7 receptive field."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, len(BANDS)))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def tiny_classifier(crop: int = 33, seed: int = 0) -> keras.Model:
    """A small patch classifier: (crop, crop, 5) -> one sigmoid probability."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((crop, crop, len(BANDS)))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)
