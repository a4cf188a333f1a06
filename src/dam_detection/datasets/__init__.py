"""Kedro datasets the ecosystem lacks: TFRecord file sets, Earth Engine image exports, point
inventories, GeoTIFF heatmaps, prediction exports, and trained models with the project's layers.

Imports are lazy (PEP 562): worker processes that need one dataset module do not pay for
geopandas, pandas or TensorFlow pulled in by another.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "TFRecordFiles": "tfrecord_files",
    "list_tfrecord_files": "tfrecord_files",
    "TFRecordDataset": "tfrecord_dataset",
    "TFRecordShardsDataset": "tfrecord_shards",
    "ImageExport": "image_export",
    "ImageExportDataset": "image_export_dataset",
    "ExportPlan": "export_plan",
    "NBIAsciiDataset": "nbi_ascii",
    "PointSource": "point_sources",
    "PointSourcesDataset": "point_sources",
    "VectorPointsDataset": "vector_points",
    "GeoTIFFDataset": "geotiff",
    "ScenePredictionsDataset": "scene_predictions",
    "KerasModelDataset": "keras_model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return __all__
