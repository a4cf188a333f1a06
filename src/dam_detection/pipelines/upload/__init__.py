"""``upload``: the segment pipeline's heatmaps back to Earth Engine as image assets."""

from dam_detection.pipelines.upload.pipeline import create_pipeline

__all__ = ["create_pipeline"]
