"""``segment``: turn scene exports into dam heatmaps, detections, evaluation and EE uploads."""

from dam_detection.pipelines.segment.pipeline import create_pipeline

__all__ = ["create_pipeline"]
