"""Nodes of ``upload``: one Earth Engine image manifest per scene heatmap.

The node only plans; the ``heatmap_ingestion`` dataset copies each heatmap (a Cloud-Optimized
GeoTIFF) to the staging bucket and starts its ingestion, so no node does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dam_detection.datasets.earthengine_ingestion import HeatmapIngestion
from dam_detection.datasets.geotiff import GeoRaster
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.pipelines.upload.settings import UploadSettings

#: The heatmaps' no-data value (``segment`` writes -1 where a scene had no data).
HEATMAP_NODATA = -1.0


def plan_heatmap_ingestion(
    heatmaps: Mapping[str, Callable[[], GeoRaster]],
    fcn_metadata: Mapping[str, Any],
    image_source: ImageSourceSettings,
    settings: UploadSettings,
) -> dict[str, HeatmapIngestion]:
    """The image manifest of every scene heatmap, and where its file is staged.

    Args:
        heatmaps: ``segment_heatmaps``: scene name to its lazy raster.
        fcn_metadata: ``fcn_model_metadata``: the model that made them (recorded on the asset).
        image_source: ``params:image_source``, for the default staging bucket.
        settings: ``params:upload``.

    Returns:
        Scene name to its planned ingestion.

    Raises:
        ValueError: If no heatmap exists, or the asset folder or staging bucket is not set.
    """
    if not heatmaps:
        raise ValueError("no heatmaps to upload: run `kedro run --pipelines segment` first")
    if settings.asset_folder is None:
        raise ValueError(
            "set upload.asset_folder to an existing Earth Engine folder, e.g. "
            "--params 'upload.asset_folder=projects/my-project/assets/dams'"
        )
    staging = settings.staging_url or _default_staging(image_source)
    write = (settings.write_url or staging).rstrip("/")
    properties = {
        "source": "dam_detection",
        "model_weights_sha256": str(fcn_metadata.get("weights_sha256", "")),
        "model_bands": ",".join(fcn_metadata.get("bands", [])),
    }
    plans = {}
    for scene in sorted(heatmaps):
        uri = f"{staging.rstrip('/')}/{scene}.tif"
        manifest = {
            "name": f"{settings.asset_folder}/{scene}_{settings.band_name}",
            "tilesets": [{"id": "heatmap", "sources": [{"uris": [uri]}]}],
            "bands": [
                {
                    "id": settings.band_name,
                    "tilesetId": "heatmap",
                    "tilesetBandIndex": 0,
                    "pyramidingPolicy": settings.pyramiding_policy,
                }
            ],
            "missingData": {"values": [HEATMAP_NODATA]},
            "properties": {**properties, "scene": scene},
        }
        plans[scene] = HeatmapIngestion(
            manifest=manifest,
            raster=heatmaps[scene],
            write_url=f"{write}/{scene}.tif",
            overwrite=settings.overwrite,
        )
    return plans


def _default_staging(image_source: ImageSourceSettings) -> str:
    earthengine = image_source.earthengine
    if earthengine is None or not earthengine.bucket:
        raise ValueError(
            "set upload.staging_url (gs://bucket/prefix) or image_source.earthengine.bucket: "
            "Earth Engine ingests files from Cloud Storage only"
        )
    return f"gs://{earthengine.bucket}/{earthengine.folder.strip('/')}/uploads"
