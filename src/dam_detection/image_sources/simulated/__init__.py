"""The simulated Earth: a procedural, Sentinel-2-like stand-in for Earth Engine (offline default).

Modules by role: ``noise`` (random fields), ``canvas`` (ground description), ``rivers``
(valleys that drain downhill), ``dams`` and ``negatives`` (features), ``landcover``,
``spectra`` (reflectance and nuisances), ``bands_out`` (exported bands), ``patch_scenes`` and
``render`` (one patch), ``patches`` (patch files on a worker pool), ``scene`` and
``scene_export`` (large scenes), ``water_occurrence`` (water-edge sampling), ``preview``.
"""

from dam_detection.image_sources.simulated.earth import SimulatedEarth

__all__ = ["SimulatedEarth"]
