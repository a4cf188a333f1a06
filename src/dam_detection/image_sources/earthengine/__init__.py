"""Google Earth Engine image source: Sentinel-2 patches and scenes as Earth Engine exports them.

Planning builds request graphs and unsubmitted export tasks; the lazy record producers start the
tasks, follow them and read the finished files from Cloud Storage. Earth Engine itself is
initialised once per run by :func:`session.initialize_from_credentials` (a Kedro hook calls it).
"""

from dam_detection.image_sources.earthengine.source import EarthEngineSource, ExportedFiles

__all__ = ["EarthEngineSource", "ExportedFiles"]
