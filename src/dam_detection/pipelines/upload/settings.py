"""Typed settings of ``upload`` (``conf/base/parameters_upload.yml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dam_detection.parameters.model import Settings


class UploadSettings(Settings):
    """``upload``: heatmaps to Earth Engine image assets (``kedro run --pipelines upload``)."""

    asset_folder: str | None = Field(default=None, pattern=r"^projects/[^/]+/assets(/[^/]+)*$")
    """Earth Engine folder the assets go to, ``projects/<cloud project>/assets/<folder>``; it
    must exist. ``null`` until set: the pipeline stops and says so."""
    staging_url: str | None = Field(default=None, pattern=r"^gs://[^/]+(/.*)?$")
    """Cloud Storage folder Earth Engine ingests the heatmaps from (``gs://bucket/prefix``);
    ``null``: ``gs://<image_source.earthengine.bucket>/<folder>/uploads``."""
    write_url: str | None = None
    """Where the heatmaps are copied to reach ``staging_url`` (any fsspec URL, e.g. a gcsfuse
    mount); ``null``: ``staging_url`` itself."""
    band_name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    """Name of the asset's band."""
    pyramiding_policy: Literal["MEAN", "SAMPLE", "MIN", "MAX", "MODE"]
    """How Earth Engine builds the asset's coarser levels (``MEAN`` for probabilities)."""
    overwrite: bool
    """Replace assets that already exist (else their ingestion fails, naming them)."""
