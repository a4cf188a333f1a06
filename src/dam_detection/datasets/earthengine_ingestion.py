"""Earth Engine image ingestion as a Kedro dataset: stage each file, start its ingestion, record.

Saving a ``{name: HeatmapIngestion}`` mapping copies each raster, as a Cloud-Optimized GeoTIFF,
to its staging URL and starts one ingestion task per manifest with ``ee.data.startIngestion``;
the report (manifests, request ids, operations) is written as JSON and is what ``load`` returns.
Earth Engine must be initialised in this process (the project's hook does it for
``--env earthengine``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ee
from kedro.io import AbstractDataset, DatasetError

from dam_detection.datasets.geotiff import GeoRaster, GeoTIFFDataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeatmapIngestion:
    """One planned ingestion.

    Attributes:
        manifest: Earth Engine's image manifest (``name``, ``tilesets``, ``bands``, ...); its
            source URI is where Earth Engine reads the file.
        raster: Loads the raster to stage.
        write_url: Where to write the file so that it appears at the manifest's URI (the URI
            itself, or a mount of its bucket).
        overwrite: Replace an existing asset of that name.
    """

    manifest: Mapping[str, Any]
    raster: Callable[[], GeoRaster]
    write_url: str
    overwrite: bool


class EarthEngineIngestionDataset(AbstractDataset[Mapping[str, HeatmapIngestion], dict]):
    """Stages rasters and starts their Earth Engine ingestions; loads the report.

    Example::

        heatmap_ingestion:
          type: dam_detection.datasets.earthengine_ingestion.EarthEngineIngestionDataset
          report_path: data/08_reporting/earthengine_upload.json
    """

    def __init__(self, *, report_path: str, metadata: dict[str, Any] | None = None) -> None:
        """Create the dataset.

        Args:
            report_path: Local JSON file recording every ingestion started.
            metadata: Free-form metadata, ignored by Kedro.
        """
        self._report_path = Path(report_path)
        self.metadata = metadata

    def save(self, data: Mapping[str, HeatmapIngestion]) -> None:
        """Stage every raster, then start every ingestion; write the report.

        Raises:
            DatasetError: Naming the asset whose ingestion Earth Engine refused; the report
                still lists the ones started before it.
        """
        for item in data.values():  # all files first: a refused start leaves nothing half-done
            GeoTIFFDataset(filepath=item.write_url, save_args={"layout": "cog"}).save(item.raster())
        started = []
        try:
            for name, item in data.items():
                request_id = ee.data.newTaskId()[0]
                try:
                    answer = ee.data.startIngestion(
                        request_id, dict(item.manifest), allow_overwrite=item.overwrite
                    )
                except ee.EEException as error:
                    raise DatasetError(
                        f"Earth Engine refused to ingest {item.manifest['name']} ({name}): "
                        f"{error}. Check that upload.asset_folder exists and that the account "
                        "may read the staging bucket; set upload.overwrite: true to replace an "
                        "existing asset"
                    ) from error
                # Earth Engine answers with the task's id (which may differ from the request id).
                operation = answer.get("id") or answer.get("name")
                started.append(
                    {"scene": name, "request_id": request_id, "operation": operation,
                     "manifest": dict(item.manifest)}
                )  # fmt: skip
                logger.info("ingesting %s as %s (%s)", name, item.manifest["name"], operation)
        finally:
            self._write_report(started)

    def _write_report(self, started: list[dict[str, Any]]) -> None:
        self._report_path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self._report_path.parent, suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            json.dump({"ingestions": started}, file, indent=2)
        os.replace(temporary, self._report_path)

    def load(self) -> dict:
        """The report of the last save."""
        return json.loads(self._report_path.read_text())

    def _exists(self) -> bool:
        return self._report_path.exists()

    def _describe(self) -> dict[str, Any]:
        return {"report_path": str(self._report_path)}
