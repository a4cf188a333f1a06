"""What the scan tests share: a tiny FCN, unit band statistics, a small planet."""

from __future__ import annotations

import numpy as np

from dam_detection.image_sources.base import CompositeWindow
from dam_detection.image_sources.simulated import SimulatedEarth
from dam_detection.pipelines.scan.tile_scan import ModelPayload, TileJob

BANDS = ("B2", "B3", "B4", "NDWI", "AVE")
STATS = {band: {"mean": 0.1, "std": 0.1} for band in BANDS} | {
    "NDWI": {"mean": 0.0, "std": 0.5},
    "AVE": {"mean": 1500.0, "std": 300.0},
}
COMPOSITE = CompositeWindow("2019-04-01", "2019-10-01", 20.0)


def tiny_fcn(seed: int = 0):
    """An untrained dilated FCN (receptive field 15 px): a fixed, position-free function."""
    import keras

    from dam_detection.pipelines.train.models import dilated_fcn

    keras.utils.set_random_seed(seed)
    return dilated_fcn(list(BANDS), width=4, dilations=(1, 2))


def small_planet() -> SimulatedEarth:
    """The test environment's planet: 256-pixel tiles, no tile cache."""
    return SimulatedEarth(seed=5, tile_px=256, tile_cache=None)


def tile_job(
    model,
    *,
    threshold: float = 0.5,
    block_px: int = 48,
    halo: int = 7,
    confirm_threshold: float | None = None,
    confirm_reach_px: float = 30.0,
) -> TileJob:
    """A scan job on the small planet."""
    reader = small_planet().block_reader(COMPOSITE, BANDS)
    return TileJob(
        reader=reader, bands=BANDS, band_stats=STATS, model=ModelPayload.of(model), halo=halo,
        block_px=block_px, threshold=threshold, min_distance_px=4.0, smoothing_px=0.0,
        water_ndwi=0.0, reservoir_reach_px=6.0, chip_px=16, chip_scale=2, blocks_per_batch=1,
        views=1, confirm_threshold=confirm_threshold, confirm_reach_px=confirm_reach_px,
        fingerprint="test",
    )  # fmt: skip


def image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Random reflectance-like bands."""
    rng = np.random.default_rng(seed)
    out = rng.uniform(0.0, 0.3, (*shape, len(BANDS))).astype(np.float32)
    out[..., 3] = rng.uniform(-1, 1, shape)
    out[..., 4] = rng.uniform(1000, 2000, shape)
    return out
