"""``ingest_points``: dam, bridge and negative points in; one validated, split points table out."""

from dam_detection.pipelines.ingest_points.pipeline import create_pipeline

__all__ = ["create_pipeline"]
