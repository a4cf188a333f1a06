"""Kedro datasets the ecosystem lacks (TFRecord file sets, Earth Engine image exports, ...)."""

from dam_detection.datasets.tfrecord_files import TFRecordFiles, list_tfrecord_files

__all__ = ["TFRecordFiles", "list_tfrecord_files"]
