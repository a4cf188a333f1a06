"""Kedro datasets the ecosystem lacks (TFRecord file sets, Earth Engine image exports, ...)."""

from dam_detection.datasets.tfrecord_files import TFRecordFiles, list_tfrecord_files

from dam_detection.datasets.nbi_ascii import NBIAsciiDataset
from dam_detection.datasets.vector_points import VectorPointsDataset

__all__ = ["NBIAsciiDataset", "TFRecordFiles", "VectorPointsDataset", "list_tfrecord_files"]
