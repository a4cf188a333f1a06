"""``gee_export``: patches around the points and large scenes, in Earth Engine's export formats."""

from dam_detection.pipelines.gee_export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
