"""The simulated Earth: a procedural, Sentinel-2-like stand-in for Earth Engine (offline default).

Modules by role: ``world`` (the planet: tiles every export samples) and ``tile_cache``;
``noise`` (random fields), ``canvas`` (ground description), ``rivers`` (valleys that drain
downhill), ``dams`` and ``negatives`` (features), ``landcover``, ``scene`` (one tile's
composition); ``spectra`` (reflectance and nuisances), ``bands_out`` (exported bands);
``render`` (one patch on Earth Engine's degree grid), ``patches`` (patch files on a worker
pool), ``scene_export`` (scenes on the UTM grid), ``water_occurrence`` (water-edge sampling),
``publish`` (the inventories the planet publishes).
"""

from dam_detection.image_sources.simulated.earth import SimulatedEarth

__all__ = ["SimulatedEarth"]
