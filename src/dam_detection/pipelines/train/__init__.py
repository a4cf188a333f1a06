"""The ``train`` pipeline: a patch classifier and a dilated FCN, reproducible and recorded."""

from dam_detection.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]
