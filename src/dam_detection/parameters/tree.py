"""The whole parameter tree: every top-level key of ``conf/*/parameters*.yml`` and its model."""

from __future__ import annotations

from pydantic import Field, field_validator

from dam_detection.bands import validate_band_names
from dam_detection.detection.settings import DetectionSettings
from dam_detection.image_sources.settings import ImageSourceSettings
from dam_detection.parameters.model import Settings
from dam_detection.pipelines.gee_export.settings import GeeExportSettings
from dam_detection.pipelines.ingest_points.settings import IngestPointsSettings
from dam_detection.pipelines.scan.settings import ScanSettings
from dam_detection.pipelines.segment.settings import SegmentSettings
from dam_detection.pipelines.shard_tfrecords.settings import ShardSettings
from dam_detection.pipelines.train.settings import TrainSettings
from dam_detection.pipelines.upload.settings import UploadSettings


class ProjectParameters(Settings):
    """All parameters, as the config loader merges them (``conf/base``, the environment,
    ``--params``).
    """

    seed: int
    """The one seed every random step derives from, unless a group sets its own ``seed``."""
    bands: list[str]
    """Bands every pipeline uses, in the order models see them (``bands.py`` names them)."""
    patch_radius: int = Field(ge=0)
    """Earth Engine's ``neighborhoodToArray`` kernel radius: patches are ``2 r + 1`` across."""
    image_source: ImageSourceSettings
    """Which source makes the imagery, and its settings."""
    detection: DetectionSettings
    """What a detection is, for ``train`` and ``segment``."""
    ingest_points: IngestPointsSettings
    """The ``ingest_points`` pipeline."""
    gee_export: GeeExportSettings
    """The ``gee_export`` pipeline."""
    shard_tfrecords: ShardSettings
    """The ``shard_tfrecords`` pipeline."""
    train: TrainSettings
    """The ``train`` pipeline."""
    segment: SegmentSettings
    """The ``segment`` pipeline (hand-placed scenes; run when named)."""
    scan: ScanSettings
    """The ``scan`` pipeline: a region segmented on Dask, known dams and candidates."""
    upload: UploadSettings
    """The ``upload`` pipeline (not part of the default run)."""

    @field_validator("bands")
    @classmethod
    def _valid_bands(cls, bands: list[str]) -> list[str]:
        return list(validate_band_names(bands))
